"""What the server drills share: the lab's Consul servers and etcd members, and killing a raft leader like a crash."""

from __future__ import annotations

from collections.abc import Callable

from lab_services.core.raft import ConsulServer
from lab_services.core.wait import wait_for
from lab_services.lessons.drills.result import Stopwatch
from lab_services.runtime.cluster import Cluster
from lab_services.runtime.status import ClusterStatus


def consul_servers(status: ClusterStatus) -> dict[str, ConsulServer]:
    """The lab's Consul servers by name, with their HTTP and raft addresses."""
    return {n: ConsulServer(p.address("http"), p.address("server")) for n, p in status.processes_of("consul").items()}


def etcd_endpoints(status: ClusterStatus) -> dict[str, str]:
    """The lab's etcd members by name, with their client endpoints."""
    return {n: p.address("client") for n, p in status.processes_of("etcd").items()}


def kill_leader(
    cluster: Cluster, watch: Stopwatch, leader: str, what: str, leader_name: Callable[[], str | None], patience: float
) -> str:
    """kill -9 the leader, as a crash would, and return the survivor the others elected (timed on `watch`)."""
    watch.fault(f"kill -9 {leader} (the {what} leader)")
    cluster.kill(leader)
    new = wait_for(lambda: (name := leader_name()) not in (None, leader) and name, patience, f"a new {what} leader")
    watch.mark(f"new leader elected: {new}", key="elected")
    return new
