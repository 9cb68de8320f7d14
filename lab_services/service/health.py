"""Per-service health status, served by the standard grpc.health.v1 service and readable by name.

grpc_health's HealthServicer keeps its table private, so we keep the statuses alongside it: the
side HTTP port's /health and /admin/state report exactly what gRPC health Check answers.
"""

from __future__ import annotations

import threading

from grpc_health.v1 import health, health_pb2

SETTABLE = ("SERVING", "NOT_SERVING")


class HealthState:
    """Health of the whole server ("") and of each named service, all NOT_SERVING until set."""

    def __init__(self, services: tuple[str, ...]):
        self.servicer = health.HealthServicer()
        self._lock = threading.Lock()
        self._status = dict.fromkeys(services, "NOT_SERVING")
        for service in services:
            self.servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)

    def set(self, status: str, service: str = "") -> None:
        """Set one service's status; ValueError naming the field if status or service is unknown."""
        if status not in SETTABLE:
            raise ValueError(f"status: must be one of {', '.join(SETTABLE)}, got {status!r}")
        with self._lock:
            if service not in self._status:
                known = ", ".join(repr(s) for s in self._status)
                raise ValueError(f"service: must be one of {known}, got {service!r}")
            self._status[service] = status
            self.servicer.set(service, health_pb2.HealthCheckResponse.ServingStatus.Value(status))

    def set_all(self, status: str) -> None:
        for service in self.snapshot():
            self.set(status, service)

    def get(self, service: str = "") -> str:
        with self._lock:
            return self._status[service]

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._status)
