"""Consul agents for the local lab on loopback: servers in one raft cluster, client agents, a second datacenter."""
from __future__ import annotations

import json
from pathlib import Path

from lab_services.runtime.nodes import NodeSpec
from lab_services.core.ports import PortAllocator
from lab_services.core.http import http_json
from lab_services.core.raft import ConsulServer, consul_leader
from lab_services.tls import CertPair

PORT_NAMES = ("http", "dns", "serf_lan", "serf_wan", "server")
CLIENT_PORT_NAMES = ("http", "serf_lan")
DATACENTER = "lab"
SECOND_DATACENTER = "dc2"
CLIENT_KIND = "consul-client"
SECOND_DC_KIND = "consul-dc2"


def plan(count: int, binary: Path, ports: PortAllocator, workdir: Path, http_port: int | None = None,
         check_ca: CertPair | None = None, check_identity: CertPair | None = None) -> list[NodeSpec]:
    """`count` servers (1 or 3) with their own ports; the first gets Consul's usual 8500/8600 when free.

    With `check_ca` the agents verify a TLS service's certificate against that CA when they check it, and
    with `check_identity` they present that client certificate, so checks pass against mutual TLS too.
    """
    if count not in (1, 3):
        raise ValueError(f"invalid argument: consul_servers: {count}; use 1 or 3 (raft needs an odd quorum)")
    nodes = []
    for i in range(1, count + 1):
        first = i == 1
        assigned = {
            "http": ports.explicit(http_port, "--consul-http-port") if first and http_port else ports.free(8500 if first else None),
            "dns": ports.free(8600 if first else None),
            **{name: ports.free() for name in PORT_NAMES[2:]},
        }
        nodes.append(NodeSpec(f"consul-{i}", "consul", [], assigned, host=ports.host))
    for node in nodes:
        server = {
            "server": True,
            "bootstrap_expect": count,
            "ports": {**{k: node.ports[k] for k in PORT_NAMES}, "grpc": -1},
            "retry_join": [other.addr("serf_lan") for other in nodes if other is not node],
            "retry_interval": "1s",
            "ui": True,
            # Over UDP Consul answers at most 3 records by default, so a dns:// client would see 3 instances.
            "dns_config": {"allow_stale": True, "node_ttl": "0s", "service_ttl": {"*": "0s"},
                           "udp_answer_limit": 64, "enable_truncate": True},
        }
        _write_agent(node, binary, workdir, server, check_ca, check_identity)
    return nodes


def _write_agent(node: NodeSpec, binary: Path, workdir: Path, role: dict, check_ca: CertPair | None,
                 check_identity: CertPair | None, datacenter: str = DATACENTER) -> None:
    """Write the agent's config file (what every agent shares, plus its `role`) and set its argv and info."""
    config = {
        "node_name": node.name,
        "datacenter": datacenter,
        "data_dir": str(workdir / node.name / "data"),
        "bind_addr": node.host,
        "client_addr": node.host,
        "advertise_addr": node.host,
        # raft_multiplier 1 brings leader election from ~6 s to ~1.5 s (docs/architecture.md).
        "performance": {"raft_multiplier": 1},
        "telemetry": {"prometheus_retention_time": "60s", "disable_hostname": True},
        "log_level": "INFO",
        "disable_update_check": True,
        "leave_on_terminate": False,
        **role,
    }
    if check_ca:
        # Consul verifies a checked certificate against its own server_name (default: the node name),
        # not the address it dials; the lab's server certificate names localhost.
        config.update(ca_file=str(check_ca.cert_path), enable_agent_tls_for_checks=True, server_name="localhost")
    if check_identity:
        config.update(cert_file=str(check_identity.cert_path), key_file=str(check_identity.key_path))
    path = workdir / node.name / "consul.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    node.argv = [str(binary), "agent", f"-config-file={path}"]
    node.info = {"url": f"http://{node.addr('http')}", "ui": f"http://{node.addr('http')}/ui/", "datacenter": datacenter}


def client_address(index: int) -> str:
    """Client agent i (a simulated node of its own) binds 127.0.0.(50+i), as each machine has its own address."""
    if not 1 <= index <= 9:
        raise ValueError(f"invalid argument: consul_clients: client {index} has no own loopback address (at most 9)")
    return f"127.0.0.{50 + index}"


def plan_clients(count: int, binary: Path, ports: PortAllocator, workdir: Path, servers: list[NodeSpec],
                 check_ca: CertPair | None = None, check_identity: CertPair | None = None) -> list[NodeSpec]:
    """`count` client agents, `node-1`..: no raft, no catalog of their own; they gossip on the LAN and forward reads.

    `retry_interval` 1 s: with the default 30 s an agent that started before its servers stays alone for 30 s.
    """
    nodes = []
    for i in range(1, count + 1):
        host = client_address(i)
        node = NodeSpec(f"node-{i}", CLIENT_KIND, [], {name: ports.free(hosts=(host,)) for name in CLIENT_PORT_NAMES}, host=host)
        client = {
            "server": False,
            "ports": {"http": node.ports["http"], "serf_lan": node.ports["serf_lan"], "dns": -1, "grpc": -1, "serf_wan": -1},
            "retry_join": [server.addr("serf_lan") for server in servers],
            "retry_interval": "1s",
        }
        _write_agent(node, binary, workdir, client, check_ca, check_identity)
        nodes.append(node)
    return nodes


def plan_second_datacenter(binary: Path, ports: PortAllocator, workdir: Path, primary: list[NodeSpec]) -> NodeSpec:
    """One server of datacenter `dc2`, its own raft of one, joined to the first datacenter's servers over the WAN."""
    node = NodeSpec("consul-dc2", SECOND_DC_KIND, [], {name: ports.free() for name in PORT_NAMES}, host=ports.host)
    server = {
        "server": True,
        "bootstrap_expect": 1,
        "ports": {**{k: node.ports[k] for k in PORT_NAMES}, "grpc": -1},
        "retry_join_wan": [server.addr("serf_wan") for server in primary],
        "retry_interval_wan": "1s",
    }
    _write_agent(node, binary, workdir, server, None, None, datacenter=SECOND_DATACENTER)
    return node


def leader(node: NodeSpec) -> str:
    """The raft leader's server address as this server sees it ('' while there is none)."""
    return http_json(f"http://{node.addr('http')}/v1/status/leader") or ""


def is_ready(node: NodeSpec) -> bool:
    """A server sees a leader; a client agent sees one too, once it has joined a server (it asks them)."""
    return bool(leader(node))


def leader_name(nodes: list[NodeSpec]) -> str | None:
    """Which of the live `nodes` leads, as the first of them that answers sees it."""
    return consul_leader({node.name: ConsulServer(node.addr("http"), node.addr("server")) for node in nodes})
