"""What the server drills share: the lab's processes of one kind, and killing a raft leader as a crash would."""
from __future__ import annotations

from typing import Any, Callable

from lab_services.core.raft import ConsulServer
from lab_services.core.wait import wait_for
from lab_services.lessons.drills.result import Stopwatch
from lab_services.runtime.cluster import Cluster


def processes_of(status: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The lab's processes of `kind` ('consul', 'etcd', ...) by name, as `status()` lists them."""
    return {p["name"]: p for p in status["processes"] if p["kind"] == kind}


def host_of(status: dict[str, Any]) -> str:
    return status["config"]["host"]


def consul_servers(status: dict[str, Any]) -> dict[str, ConsulServer]:
    """The lab's Consul servers by name, with their HTTP and raft addresses."""
    host = host_of(status)
    return {n: ConsulServer(f"{host}:{p['ports']['http']}", f"{host}:{p['ports']['server']}")
            for n, p in processes_of(status, "consul").items()}


def etcd_endpoints(status: dict[str, Any]) -> dict[str, str]:
    """The lab's etcd members by name, with their client endpoints."""
    return {n: f"{host_of(status)}:{p['ports']['client']}" for n, p in processes_of(status, "etcd").items()}


def kill_leader(cluster: Cluster, watch: Stopwatch, leader: str, what: str, leader_name: Callable[[], str | None],
                patience: float) -> str:
    """kill -9 the leader, as a crash would, and return the survivor the others elected (timed on `watch`)."""
    watch.fault(f"kill -9 {leader} (the {what} leader)")
    cluster.kill(leader)
    new = wait_for(lambda: (name := leader_name()) not in (None, leader) and name, patience, f"a new {what} leader")
    watch.mark(f"new leader elected: {new}", key="elected")
    return new
