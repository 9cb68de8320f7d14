"""Per-service health status, served by the standard grpc.health.v1 service and readable by name.

grpc_health's HealthServicer keeps its table private, so we keep the statuses alongside it: the
side HTTP port's /health and /admin/state report exactly what gRPC health Check answers.
"""

from __future__ import annotations

import asyncio
import threading

from grpc_health.v1 import health, health_pb2

SETTABLE = ("SERVING", "NOT_SERVING")


class HealthState:
    """Health of the whole server ("") and of each named service, all NOT_SERVING until set."""

    def __init__(self, services: tuple[str, ...]):
        self._lock = threading.Lock()
        self._status = dict.fromkeys(services, "NOT_SERVING")
        self.serve_on_threads()

    def serve_on_threads(self) -> health.HealthServicer:
        """The thread-pool server's servicer, holding the current statuses (also after an asyncio server stopped)."""
        servicer = health.HealthServicer()
        for service, status in self.snapshot().items():
            servicer.set(service, health_pb2.HealthCheckResponse.ServingStatus.Value(status))
        with self._lock:
            self.servicer: health.HealthServicer | health.aio.HealthServicer = servicer
            self._loop: asyncio.AbstractEventLoop | None = None
        return servicer

    async def serve_on_asyncio(self) -> health.aio.HealthServicer:
        """Switch to grpc_health's asyncio servicer on the running loop (the thread one blocks a thread per Watch)."""
        servicer = health.aio.HealthServicer()
        for service, status in self.snapshot().items():
            await servicer.set(service, health_pb2.HealthCheckResponse.ServingStatus.Value(status))
        with self._lock:
            self.servicer, self._loop = servicer, asyncio.get_running_loop()
        return servicer

    def set(self, status: str, service: str = "") -> None:
        """Set one service's status; ValueError naming the field if status or service is unknown."""
        if status not in SETTABLE:
            raise ValueError(f"status: must be one of {', '.join(SETTABLE)}, got {status!r}")
        with self._lock:
            if service not in self._status:
                known = ", ".join(repr(s) for s in self._status)
                raise ValueError(f"service: must be one of {known}, got {service!r}")
            self._status[service] = status
            value = health_pb2.HealthCheckResponse.ServingStatus.Value(status)
            if self._loop is None:
                self.servicer.set(service, value)
                return
            done = asyncio.run_coroutine_threadsafe(self.servicer.set(service, value), self._loop)
        if not _on_loop(self._loop):
            # Wait, so a gRPC Check right after set() already answers the new status, as with threads.
            done.result(timeout=5)

    def set_all(self, status: str) -> None:
        for service in self.snapshot():
            self.set(status, service)

    def get(self, service: str = "") -> str:
        with self._lock:
            return self._status[service]

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._status)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
