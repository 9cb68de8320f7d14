"""The service drills' probe instance (a separate instance of the lab's service) and the client load put on it."""

from __future__ import annotations

import threading
import time
import uuid

import grpc

from lab_services.core.ports import PortAllocator
from lab_services.discovery.picker_channel import PickerChannel
from lab_services.lessons.beside import BesideTheLab
from lab_services.runtime import Auxiliary, Cluster
from lab_services.service import user_pb2, user_pb2_grpc
from lab_services.service.command import ServiceCommand


class Probe(BesideTheLab):
    """A separate instance of the lab's service, registered in Consul only, with the drill's check settings."""

    def __init__(
        self,
        cluster: Cluster,
        check_interval: str,
        check_timeout: str,
        ttl: str | None,
        deregister_after: str | None,
    ):
        status = cluster.status()
        self.cluster = cluster
        self.service = status.config.service_name
        self.id = f"{self.service}-drill-{uuid.uuid4().hex[:4]}"
        self.consul_http = status.consul.http[0]
        # Its own address beside the lab (the kernel's on the local runtime, one on the stack's network on compose).
        self.host = cluster.auxiliary_host()
        ports = PortAllocator()
        options = ["--check-interval", check_interval, "--check-timeout", check_timeout, "--grace", "1"]
        options += ["--ttl", ttl] if ttl else []
        options += ["--deregister-after", deregister_after] if deregister_after else []
        self.command = ServiceCommand(
            host=self.host,
            port=ports.free(),
            http_port=ports.free(),
            name=self.service,
            instance_id=self.id,
            registry="consul",
            version="drill",
            tags=["drill"],
            consul=self.consul_http,
            checks=["grpc", "ttl"] if ttl else ["grpc"],
            options=options,
        )

    def start(self) -> None:
        self.child = self.cluster.start_auxiliary(Auxiliary.SERVICE, self.id, self.command.flags(), self.host)


class Load:
    """One client thread calling CreateUser through a PickerChannel about `rate` times a second; records each result."""

    def __init__(self, channel: PickerChannel, call_timeout: float, rate: float = 40.0):
        self.stub = user_pb2_grpc.UserServiceStub(channel)
        self.call_timeout = call_timeout
        self.pause = 1.0 / rate
        self.results: list[tuple[float, float, str, str]] = []  # (monotonic start, end, code name, served_by)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-load", daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            request = user_pb2.CreateUserRequest(name="Drill", email=f"drill-{uuid.uuid4().hex[:10]}@example.com")
            started = time.monotonic()
            try:
                served_by = self.stub.CreateUser(request, timeout=self.call_timeout).served_by
                self.results.append((started, time.monotonic(), "OK", served_by))
            except grpc.RpcError as err:
                self.results.append((started, time.monotonic(), err.code().name, ""))
            except Exception as err:  # no instance at all, or a closed channel while stopping
                self.results.append((started, time.monotonic(), type(err).__name__, ""))
            self._stop.wait(self.pause)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.call_timeout + 2)

    def errors(self, since: float) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, at, code, _ in list(self.results):
            if at >= since and code != "OK":
                counts[code] = counts.get(code, 0) + 1
        return counts

    def calls(self, since: float) -> int:
        return sum(1 for _, at, _, _ in list(self.results) if at >= since)

    def first_served_by(self, instance_id: str, since: float) -> float | None:
        """When the first call that started at or after `since` was answered by `instance_id` (a call held by a
        paused instance and answered once it resumed does not count: it was routed there before)."""
        return next((end for start, end, _, who in list(self.results) if start >= since and who == instance_id), None)
