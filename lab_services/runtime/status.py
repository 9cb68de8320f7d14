"""The part of `status()` both runtimes share: addresses, leaders, services and processes, built from node specs.

The CLI, dashboard, drills and lessons read this shape, so it is built in one place; each runtime adds how
it runs a node (a pid file and log for a process, a container id for a container).
"""
from __future__ import annotations

from typing import Any, Callable

from lab_services.runtime.nodes import NodeSpec, consul, etcd


def describe(nodes: list[NodeSpec], state_of: Callable[[str], str], pid_of: Callable[[str], int | None],
             process_extra: Callable[[NodeSpec], dict[str, Any]],
             service_extra: Callable[[NodeSpec], dict[str, Any]] = lambda node: {}) -> dict[str, Any]:
    """The extras add runtime-specific fields to a node's entry in "processes" and in "services"."""
    by_kind: dict[str, list[NodeSpec]] = {}
    for node in nodes:
        by_kind.setdefault(node.kind, []).append(node)
    consul_nodes, etcd_nodes = by_kind.get("consul", []), by_kind.get("etcd", [])
    prom = by_kind.get("prometheus", [])
    live_consul = [n for n in consul_nodes if state_of(n.name) == "running"]
    live_etcd = [n for n in etcd_nodes if state_of(n.name) == "running"]
    return {
        "consul": {
            "http": [n.addr("http") for n in consul_nodes],
            "dns": consul_nodes[0].addr("dns") if consul_nodes else None,
            "ui": consul_nodes[0].info["ui"] if consul_nodes else None,
            "leader": consul.leader_name(live_consul),
        },
        "etcd": {"endpoints": [n.addr("client") for n in etcd_nodes], "leader": etcd.leader_name(live_etcd)},
        "prometheus": {"url": prom[0].info["url"] if prom else None, "config": prom[0].info["config"] if prom else None},
        "services": [
            {"id": n.name, "name": n.info["service"], "version": n.info["version"], "address": n.addr("grpc"),
             "admin": n.info["admin"], "pid": pid_of(n.name), "metrics_url": n.info["metrics_url"],
             "state": state_of(n.name), **service_extra(n)}
            for n in by_kind.get("service", [])
        ],
        "processes": [
            {"name": n.name, "kind": n.kind, "host": n.host, "pid": pid_of(n.name), "state": state_of(n.name),
             "ports": n.ports, **process_extra(n)}
            for n in nodes
        ],
    }
