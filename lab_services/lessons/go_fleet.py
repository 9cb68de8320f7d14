"""Lesson 15's mixed fleet: the articles' Go user service started beside the lab and called next to the Python ones."""

from __future__ import annotations

import collections
import json
import time
import uuid
from typing import Any

from lab_services.core.errors import BadInputError, LabError
from lab_services.core.network import lab_subnet
from lab_services.core.ports import PortAllocator
from lab_services.core.table import Table
from lab_services.core.wait import wait_for
from lab_services.core.wire import ETCD_SERVICES_PREFIX
from lab_services.discovery.picker_channel import PickerChannel
from lab_services.discovery.watcher import Watcher
from lab_services.lessons.beside import BesideTheLab
from lab_services.lessons.drills.probe import Load
from lab_services.registry.etcd import parse_instance
from lab_services.runtime import Auxiliary, Cluster, go_programs
from lab_services.runtime.binaries import run_tool
from lab_services.service import user_pb2, user_pb2_grpc


class GoInstance(BesideTheLab):
    """One Go user service (go/cmd/user-service) beside the lab, registered as the articles register.

    >>> go = GoInstance(cluster, registry="etcd").start()   # /services/user/127.0.0.1:PORT -> "" under a 10 s lease
    >>> go.kill()                                            # SIGKILL: no deregistration, the lease runs out
    """

    def __init__(self, cluster: Cluster, registry: str = "etcd", lease: int = 10, value: str = "empty"):
        if registry not in ("etcd", "consul"):
            raise BadInputError(f"invalid argument: registry: {registry!r}; use 'etcd' or 'consul'")
        status = cluster.status()
        self.cluster = cluster
        self.registry = registry
        self.lease = lease
        self.service = status.config.service_name
        self.host = cluster.auxiliary_host()
        self.port = PortAllocator().free()  # free here; on compose its container's address has every port free
        self.id = f"go-{self.port}"
        self.address = f"{self.host}:{self.port}"
        # The id the lab's watchers give it: Consul keeps the registration's ID; in etcd the key's last segment is
        # the address, as the articles write it.
        self.instance_id = self.address if registry == "etcd" else self.id
        self.key = f"{ETCD_SERVICES_PREFIX}/{self.service}/{self.address}" if registry == "etcd" else ""
        flags = ["-host", self.host, "-lab-net", str(lab_subnet()), "-port", str(self.port), "-id", self.id]
        flags += ["-name", self.service]
        if registry == "etcd":
            flags += ["-registry", "etcd", "-etcd", ",".join(status.etcd.endpoints), "-lease", str(lease)]
            flags += ["-prefix", ETCD_SERVICES_PREFIX, "-value", value]
        else:
            flags += ["-registry", "consul", "-consul", status.consul.http[0], "-tags", "go,canary"]
        self.flags = flags

    def start(self, timeout: float = 120.0) -> GoInstance:
        """Start it (building the Go programs first if they are missing or stale) and return once it has registered.

        It prints one JSON line when it serves and has registered; a program that exits first raises with its log.
        """
        self.child = self.cluster.start_auxiliary(Auxiliary.GO_SERVICE, self.id, self.flags, self.host)
        wait_for(
            lambda: self.announcement() or self._exited(),
            timeout,
            f"the Go service {self.id} to serve and register",
            interval=0.1,
            seen=lambda: f"its log says: {self.tail(5)!r}",
        )
        return self

    def announcement(self) -> dict[str, str] | None:
        """The line it printed once serving and registered, e.g. {"event": "serving", "registered": "/services/..."}."""
        for line in self.tail(50).splitlines():
            if line.startswith('{"') and '"serving"' in line:
                return json.loads(line)
        return None

    def _exited(self) -> None:
        if not self.child.alive():
            raise LabError(f"the Go service {self.id} exited before it registered; its log:\n{self.tail(20)}")


def calls_by_instance(watcher: Watcher, calls: int = 12, policy: str = "round_robin") -> dict[str, int]:
    """Make `calls` CreateUser calls through a PickerChannel over `watcher`'s instances; how many each served_by got."""
    if calls < 1:
        raise BadInputError(f"invalid argument: calls: {calls!r}; make at least one call")
    tag = uuid.uuid4().hex[:8]
    with PickerChannel(watcher, policy) as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        served = collections.Counter(
            stub.CreateUser(
                user_pb2.CreateUserRequest(name="Mixed fleet", email=f"fleet-{tag}-{n}@example.com"), timeout=5
            ).served_by
            for n in range(calls)
        )
    return dict(sorted(served.items()))


def run_go_client(cluster: Cluster, calls: int = 9, expect: int = 1) -> go_programs.ClientRun:
    """Run the Go client (article 004's etcd resolver, round_robin) once against the lab's etcd and service prefix."""
    status = cluster.status()
    prefix = f"{ETCD_SERVICES_PREFIX}/{status.config.service_name}/"
    return go_programs.run_client(status.etcd.endpoints, prefix, calls=calls, expect=expect)


def kill_under_load(go: GoInstance, watcher: Watcher, rate: float = 20.0, window: float = 30.0) -> dict[str, Any]:
    """SIGKILL `go` while a PickerChannel over `watcher` calls the fleet `rate` times a second; how long until the
    watcher dropped it, and how the calls fared from the kill until 20 more calls after that."""
    with PickerChannel(watcher, "round_robin") as channel:
        load = Load(channel, call_timeout=5, rate=rate).start()
        try:
            wait_for(lambda: go.id in {who for *_, who in load.results}, 10, f"a call answered by {go.id}")
            killed = time.monotonic()
            go.kill()
            if not watcher.wait_for(lambda xs: go.instance_id not in {i.id for i in xs}, window):
                raise LabError(f"{watcher.where} still lists {go.instance_id} {window:g} s after the kill")
            left = time.monotonic()
            wait_for(lambda: load.calls(left) >= 20, 10, "20 calls after it left")
        finally:
            load.stop()
    return {
        "seconds to leave": round(left - killed, 2),
        "calls": load.calls(killed),
        "failed": sum(load.errors(killed).values()),
        "retried elsewhere": channel.retried,
    }


def instance_keys(etcd: Any, prefix: str) -> Table:
    """A row per key under `prefix`: its value as stored, and what the lab's watcher reads from it (the layout and
    the address), or why it cannot."""
    rows = []
    for value, meta in etcd.get_prefix(prefix):
        try:
            found = parse_instance(meta.key, value)
            read = {"layout": found["dialect"], "address": found["address"], "why not": ""}
        except ValueError as err:
            read = {"layout": "unreadable", "address": "", "why not": str(err).split(": ", 2)[-1]}
        rows.append({"key": meta.key.decode(), "value": value.decode(errors="replace")[:60], **read})
    return Table(rows)


def etcdctl_get(cluster: Cluster, prefix: str) -> str:
    """`etcdctl get --prefix` as an operator types it: etcd's own view of the keys, whoever wrote them."""
    endpoints = ",".join(cluster.status().etcd.endpoints)
    return run_tool("etcdctl", ["--endpoints", endpoints, "get", "--prefix", prefix])


def consul_services(cluster: Cluster) -> str:
    """`consul catalog services -tags`: Consul's own list of services and their tags."""
    return run_tool("consul", ["catalog", "services", "-tags", f"-http-addr={cluster.status().consul.http[0]}"])
