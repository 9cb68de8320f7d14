"""Where each container of the compose stack listens: one loopback address per node, the ports each server uses.

docker-compose.yml says the same in YAML; tests/runtime/test_compose_files.py checks that both agree.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from lab_services.core.errors import BadInputError
from lab_services.runtime.nodes import NodeSpec, prometheus, service
from lab_services.service.command import ServiceCommand

PROJECT = "discovery-lab"
SERVICE_NAME = "user"
CONSUL_PORTS = {"http": 8500, "dns": 8600, "serf_lan": 8301, "serf_wan": 8302, "server": 8300}
ETCD_PORTS = {"client": 2379, "peer": 2380}
PROMETHEUS_PORTS = {"http": 9090}
# Every instance has its own address and the same ports, so Consul DNS A records (no port) work as well.
SERVICE_PORTS = {"grpc": 5000, "http": 9100}
INSTANCES = 3
MAX_INSTANCE = 200


def consul_address(i: int) -> str:
    return f"127.0.1.{10 + i}"


def etcd_address(i: int) -> str:
    return f"127.0.1.{20 + i}"


PROMETHEUS_ADDRESS = "127.0.1.31"
# The instances registered in etcd, as Prometheus file_sd targets: the etcd-sd container writes this file in a
# host directory that Prometheus mounts at the same path, so lesson 08 reads it where the config says (the
# local runtime writes it from a thread of its engine process).
ETCD_TARGETS = PurePosixPath("/tmp/discovery-lab-sd") / prometheus.ETCD_TARGETS


def service_address(index: int) -> str:
    """Instance i on 127.0.1.(40+i): user-1..3 are in docker-compose.yml, added instances take the next ones."""
    if not 1 <= index <= MAX_INSTANCE:
        raise BadInputError(
            f"invalid argument: instance {index}: the compose runtime has addresses for 1 to {MAX_INSTANCE}"
        )
    return f"127.0.1.{40 + index}"


def consul_nodes() -> list[NodeSpec]:
    nodes = [NodeSpec(f"consul-{i}", "consul", [], dict(CONSUL_PORTS), host=consul_address(i)) for i in range(1, 4)]
    for node in nodes:
        node.info = {"url": f"http://{node.addr('http')}", "ui": f"http://{node.addr('http')}/ui/"}
    return nodes


def etcd_nodes() -> list[NodeSpec]:
    nodes = [NodeSpec(f"etcd-{i}", "etcd", [], dict(ETCD_PORTS), host=etcd_address(i)) for i in range(1, 4)]
    for node in nodes:
        node.info = {"endpoint": node.addr("client"), "metrics": f"http://{node.addr('client')}/metrics"}
    return nodes


def prometheus_node(config_path: str) -> NodeSpec:
    node = NodeSpec("prometheus", "prometheus", [], dict(PROMETHEUS_PORTS), host=PROMETHEUS_ADDRESS)
    node.info = {"url": f"http://{node.addr('http')}", "config": config_path, "etcd_targets": str(ETCD_TARGETS)}
    return node


def service_command(index: int, version: str = "v1", meta: dict[str, str] | None = None) -> ServiceCommand:
    """Instance `index` as the local runtime would start it, at its compose address on the shared ports."""
    return ServiceCommand(
        host=service_address(index),
        port=SERVICE_PORTS["grpc"],
        http_port=SERVICE_PORTS["http"],
        name=SERVICE_NAME,
        instance_id=f"{SERVICE_NAME}-{index}",
        registry="both",
        version=version,
        meta=meta or {},
        consul=consul_nodes()[0].addr("http"),
        etcd=[n.addr("client") for n in etcd_nodes()],
    )


def service_node(index: int, version: str = "v1") -> NodeSpec:
    command = service_command(index, version)
    node = NodeSpec(command.instance_id, "service", command.args(), dict(SERVICE_PORTS), host=command.host)
    node.info = service.info(node, SERVICE_NAME, version)
    return node


def server_nodes(prometheus_config: str) -> list[NodeSpec]:
    """Consul, etcd and Prometheus: the part of the stack that is the same in every compose lab."""
    return [*consul_nodes(), *etcd_nodes(), prometheus_node(prometheus_config)]
