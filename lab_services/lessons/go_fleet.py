"""Lesson 15's mixed fleet: the articles' Go user service started beside the lab and called next to the Python ones."""

from __future__ import annotations

import collections
import json
import uuid
from typing import Any

from lab_services.core.errors import BadInputError, LabError
from lab_services.core.ports import PortAllocator
from lab_services.core.wait import wait_for
from lab_services.core.wire import ETCD_SERVICES_PREFIX
from lab_services.discovery.picker_channel import PickerChannel
from lab_services.discovery.watcher import Watcher
from lab_services.runtime import Auxiliary, Cluster, go_programs
from lab_services.service import user_pb2, user_pb2_grpc


class GoInstance:
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
        self.port = PortAllocator(self.host).free()
        self.id = f"go-{self.port}"
        self.address = f"{self.host}:{self.port}"
        # The id the lab's watchers give it: Consul keeps the registration's ID; in etcd the key's last segment is
        # the address, as the articles write it.
        self.instance_id = self.address if registry == "etcd" else self.id
        self.key = f"{ETCD_SERVICES_PREFIX}/{self.service}/{self.address}" if registry == "etcd" else ""
        flags = ["-host", self.host, "-port", str(self.port), "-id", self.id, "-name", self.service]
        if registry == "etcd":
            flags += ["-registry", "etcd", "-etcd", ",".join(status.etcd.endpoints), "-lease", str(lease)]
            flags += ["-prefix", ETCD_SERVICES_PREFIX, "-value", value]
        else:
            flags += ["-registry", "consul", "-consul", status.consul.http[0], "-tags", "go,canary"]
        self.flags = flags
        self.child: Any = None

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

    def tail(self, lines: int = 15) -> str:
        return self.child.tail(lines) if self.child is not None else ""

    def kill(self) -> None:
        """SIGKILL, as a crash: no deregistration, no lease revocation."""
        self.child.kill()

    def stop(self) -> None:
        """SIGTERM: it marks itself NOT_SERVING, leaves its registry (revokes its lease) and drains its calls."""
        if self.child is not None:
            self.child.stop(timeout=10)


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
