"""Consul servers for the local lab: a config file per server, joined into one raft cluster on loopback."""
from __future__ import annotations

import json
from pathlib import Path

from lab_services.runtime.nodes import NodeSpec
from lab_services.core.ports import PortAllocator
from lab_services.core.http import http_json
from lab_services.core.raft import ConsulServer, consul_leader
from lab_services.tls import CertPair

PORT_NAMES = ("http", "dns", "serf_lan", "serf_wan", "server")


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
        config = {
            "node_name": node.name,
            "datacenter": "lab",
            "data_dir": str(workdir / node.name / "data"),
            "server": True,
            "bootstrap_expect": count,
            "bind_addr": node.host,
            "client_addr": node.host,
            "advertise_addr": node.host,
            "ports": {**{k: node.ports[k] for k in PORT_NAMES}, "grpc": -1},
            "retry_join": [other.addr("serf_lan") for other in nodes if other is not node],
            "retry_interval": "1s",
            # raft_multiplier 1 brings leader election from ~6 s to ~1.5 s (docs/architecture.md).
            "performance": {"raft_multiplier": 1},
            "telemetry": {"prometheus_retention_time": "60s", "disable_hostname": True},
            "ui": True,
            "log_level": "INFO",
            "disable_update_check": True,
            "leave_on_terminate": False,
            # Over UDP Consul answers at most 3 records by default, so a dns:// client would see 3 instances.
            "dns_config": {"allow_stale": True, "node_ttl": "0s", "service_ttl": {"*": "0s"},
                           "udp_answer_limit": 64, "enable_truncate": True},
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
        node.info = {"url": f"http://{node.addr('http')}", "ui": f"http://{node.addr('http')}/ui/"}
    return nodes


def leader(node: NodeSpec) -> str:
    """The raft leader's server address as this server sees it ('' while there is none)."""
    return http_json(f"http://{node.addr('http')}/v1/status/leader") or ""


def is_ready(node: NodeSpec) -> bool:
    return bool(leader(node))


def leader_name(nodes: list[NodeSpec]) -> str | None:
    """Which of the live `nodes` leads, as the first of them that answers sees it."""
    return consul_leader({node.name: ConsulServer(node.addr("http"), node.addr("server")) for node in nodes})
