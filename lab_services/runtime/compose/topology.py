"""Where each container of the compose stack listens: fixed addresses on the stack's bridge network, the same ports
in every container.

docker-compose.yml says the same in YAML (with `${LAB_NET_PREFIX}` for the network's first three octets);
tests/runtime/test_compose_files.py checks that both agree. The network is `LAB_NET_PREFIX`.0/24:
    .5 jupyter   .11-13 consul-N   .21-23 etcd-N   .31 prometheus   .32 etcd-sd   .41+ user-N (up to .140)
    .151-.159 client agents node-N   .161 consul-dc2   .171-.199 auxiliaries a lesson starts (a probe, an agent)
Docker places anything else above .224 (the network's ip_range), so it never takes one of these.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from lab_services.core.errors import BadInputError
from lab_services.core.network import net_prefix, stack_setting
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.nodes import NodeSpec, consul, prometheus, service
from lab_services.service.command import ServiceCommand

PROJECT = "discovery-lab"
SERVICE_NAME = "user"
CONSUL_PORTS = {"http": 8500, "dns": 8600, "serf_lan": 8301, "serf_wan": 8302, "server": 8300}
ETCD_PORTS = {"client": 2379, "peer": 2380}
PROMETHEUS_PORTS = {"http": 9090}
# Every instance has its own address and the same ports, so Consul DNS A records (no port) work as well.
SERVICE_PORTS = {"grpc": 5000, "http": 9100}
INSTANCES = 3
MAX_INSTANCE = 100
JUPYTER = "jupyter"
# The instances registered in etcd, as Prometheus file_sd targets: the etcd-sd container writes this file in a
# volume that Prometheus and JupyterLab mount at the same path, so lesson 08 reads it where the config says.
ETCD_TARGETS = PurePosixPath("/lab/sd") / prometheus.ETCD_TARGETS
AUXILIARY_HOSTS = range(171, 200)
# Where a TLS lab's certificates are in the instances and consul-1 (the runtime writes them in before each starts).
TLS_DIR = "/lab/tls"


def address(last: int) -> str:
    """The stack's address ending in `last` ('10.213.7.11' for 11)."""
    return f"{net_prefix()}.{last}"


def consul_address(i: int) -> str:
    return address(10 + i)


def etcd_address(i: int) -> str:
    return address(20 + i)


def jupyter_address() -> str:
    return address(5)


def service_address(index: int) -> str:
    """Instance i at .(40+i): user-1..3 are in docker-compose.yml, added instances take the next ones."""
    if not 1 <= index <= MAX_INSTANCE:
        raise BadInputError(
            f"invalid argument: instance {index}: the compose runtime has addresses for 1 to {MAX_INSTANCE}"
        )
    return address(40 + index)


def consul_nodes() -> list[NodeSpec]:
    nodes = [NodeSpec(f"consul-{i}", "consul", [], dict(CONSUL_PORTS), host=consul_address(i)) for i in range(1, 4)]
    for node in nodes:
        node.info = {"url": f"http://{node.addr('http')}", "ui": f"http://{node.addr('http')}/ui/"}
    # The UI a browser opens is consul-1's, published on 127.0.0.1 (the bridge is out of a Desktop host's reach).
    nodes[0].info["ui"] = f"http://127.0.0.1:{stack_setting('LAB_CONSUL_PORT', '8500')}/ui/"
    return nodes


def etcd_nodes() -> list[NodeSpec]:
    nodes = [NodeSpec(f"etcd-{i}", "etcd", [], dict(ETCD_PORTS), host=etcd_address(i)) for i in range(1, 4)]
    for node in nodes:
        node.info = {"endpoint": node.addr("client"), "metrics": f"http://{node.addr('client')}/metrics"}
    return nodes


def prometheus_node(config_path: str) -> NodeSpec:
    node = NodeSpec("prometheus", "prometheus", [], dict(PROMETHEUS_PORTS), host=address(31))
    node.info = {"url": f"http://{node.addr('http')}", "config": config_path, "etcd_targets": str(ETCD_TARGETS)}
    return node


def service_command(
    index: int,
    version: str = "v1",
    meta: dict[str, str] | None = None,
    options: list[str] | None = None,
    consul: str | None = None,
) -> ServiceCommand:
    """Instance `index` as the local runtime would start it, at its own address on the shared ports, registered
    with consul-1's agent or the `consul` agent given."""
    return ServiceCommand(
        host=service_address(index),
        port=SERVICE_PORTS["grpc"],
        http_port=SERVICE_PORTS["http"],
        name=SERVICE_NAME,
        instance_id=f"{SERVICE_NAME}-{index}",
        registry="both",
        version=version,
        meta=meta or {},
        consul=consul or consul_nodes()[0].addr("http"),
        etcd=[n.addr("client") for n in etcd_nodes()],
        options=options or [],
    )


def service_node(index: int, version: str = "v1", command: ServiceCommand | None = None) -> NodeSpec:
    """Instance `index` as the runtime waits for and reports it (`command`: how it was started, if not the file's)."""
    command = command or service_command(index, version)
    node = NodeSpec(command.instance_id, "service", command.args(), dict(SERVICE_PORTS), host=command.host)
    node.info = service.info(node, SERVICE_NAME, version)
    return node


def server_nodes(prometheus_config: str) -> list[NodeSpec]:
    """Consul, etcd and Prometheus: the part of the stack that is the same in every compose lab."""
    return [*consul_nodes(), *etcd_nodes(), prometheus_node(prometheus_config)]


def by_name(nodes: list[NodeSpec]) -> list[NodeSpec]:
    """The same nodes addressed by container name, which Docker's DNS resolves on the stack's network: the
    generated configs name them so, and stay right when a learner moves the network to another prefix."""
    return [NodeSpec(n.name, n.kind, n.argv, n.ports, host=n.name) for n in nodes]


def _agent_flags(name: str, host: str, datacenter: str) -> list[str]:
    """What every extra agent's command line shares (the servers read the same from consul/server.json)."""
    return [
        "agent",
        f"-node={name}",
        f"-datacenter={datacenter}",
        "-data-dir=/consul/data",
        f"-bind={host}",
        "-client=0.0.0.0",
        "-hcl=disable_update_check = true",
        '-hcl=telemetry { prometheus_retention_time = "60s" disable_hostname = true }',
    ]


def extra_nodes(shape: ClusterConfig) -> list[NodeSpec]:
    """The agents `shape` has beyond the file's servers: client agents node-1.. (one per simulated machine, each
    at its own address, joined to the servers over the LAN) and the one-server datacenter dc2 (joined over the WAN)."""
    servers = consul_nodes()
    nodes = []
    for i in range(1, shape.consul_clients + 1):
        host = address(150 + i)
        node = NodeSpec(f"node-{i}", consul.CLIENT_KIND, [], {"http": 8500, "serf_lan": 8301}, host=host)
        node.argv = [
            *_agent_flags(node.name, host, consul.DATACENTER),
            *(f"-retry-join={s.host}" for s in servers),
            "-retry-interval=1s",
        ]
        node.info = {"url": f"http://{node.addr('http')}", "ui": f"http://{node.addr('http')}/ui/"}
        nodes.append(node)
    if shape.datacenters == 2:
        node = NodeSpec("consul-dc2", consul.SECOND_DC_KIND, [], dict(CONSUL_PORTS), host=address(161))
        node.argv = [
            *_agent_flags(node.name, node.host, consul.SECOND_DATACENTER),
            "-server",
            "-bootstrap-expect=1",
            "-hcl=performance { raft_multiplier = 1 }",
            *(f"-retry-join-wan={s.host}" for s in servers),
            "-retry-interval-wan=1s",
        ]
        node.info = {
            "url": f"http://{node.addr('http')}",
            "ui": f"http://{node.addr('http')}/ui/",
            "datacenter": consul.SECOND_DATACENTER,
        }
        nodes.append(node)
    for node in nodes:
        node.info.setdefault("datacenter", consul.DATACENTER)
    return nodes


def registration_agent(index: int, shape: ClusterConfig) -> NodeSpec:
    """The agent instance `index` registers with: its node's client agent, spread round the nodes as on the local
    runtime, or consul-1's when the lab runs no client agents."""
    clients = [n for n in extra_nodes(shape) if n.kind == consul.CLIENT_KIND]
    return clients[(index - 1) % len(clients)] if clients else consul_nodes()[0]


def config_flags(shape: ClusterConfig) -> list[str]:
    """`--config-store` and its address, when the lab's instances follow a config store (lesson 10)."""
    if shape.config_store == "none":
        return []
    if shape.config_store == "consul":
        return ["--config-store", "consul", "--config-address", consul_nodes()[0].addr("http")]
    return ["--config-store", "etcd", "--config-address", ",".join(n.addr("client") for n in etcd_nodes())]


def tls_hosts() -> list[str]:
    """What the instances' server certificate names: every instance's address and container name, and localhost
    (the name Consul's checks verify, as on the local runtime)."""
    return [
        *(service_address(i) for i in range(1, MAX_INSTANCE + 1)),
        *(f"user-{i}" for i in range(1, MAX_INSTANCE + 1)),
    ]


def tls_flags(shape: ClusterConfig) -> list[str]:
    """The instances' TLS flags: serve with the lab's server certificate; under mTLS require the lab CA's clients."""
    if shape.tls == "off":
        return []
    flags = ["--tls-cert", f"{TLS_DIR}/server.pem", "--tls-key", f"{TLS_DIR}/server-key.pem", "--check-tls-verify"]
    return flags + (["--tls-ca", f"{TLS_DIR}/ca.pem", "--mtls"] if shape.tls == "mtls" else [])


def consul_tls_flags(tls: str) -> list[str]:
    """consul-1's flags for a TLS lab: its gRPC checks verify the instances' certificate against the lab CA (under
    the name localhost, as on the local runtime) and present the lab's client certificate, which mTLS asks for."""
    if tls == "off":
        return []
    return [
        f'-hcl=ca_file = "{TLS_DIR}/ca.pem"',
        "-hcl=enable_agent_tls_for_checks = true",
        '-hcl=server_name = "localhost"',
        f'-hcl=cert_file = "{TLS_DIR}/client.pem"',
        f'-hcl=key_file = "{TLS_DIR}/client-key.pem"',
    ]
