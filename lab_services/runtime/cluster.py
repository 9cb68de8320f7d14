"""The one interface every lab runtime offers, so a lesson never cares which runtime runs its cluster."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from lab_services.runtime.status import ClusterStatus


class NotReadyError(RuntimeError):
    """A lab process did not become ready (or exited); the message carries the tail of its log."""


class UnknownProcessError(KeyError):
    """A process name that is not part of the running lab; the message lists the valid names."""

    def __str__(self) -> str:
        return str(self.args[0])


class Cluster(ABC):
    """Start, inspect and disturb a lab cluster. Every method answers with plain data (JSON-ready)."""

    backend: str

    @abstractmethod
    def up(self) -> ClusterStatus:
        """Start everything and wait until it is really ready; returns `status()`."""

    @abstractmethod
    def down(self) -> None:
        """Stop every process; safe to call twice."""

    @abstractmethod
    def status(self) -> ClusterStatus:
        """Addresses, processes with pids and states, leaders, binaries; `.to_dict()` is the `status --json` object."""

    @abstractmethod
    def kill(self, name: str) -> dict[str, Any]:
        """SIGKILL, as a crash would."""

    @abstractmethod
    def stop(self, name: str) -> dict[str, Any]:
        """SIGTERM and wait: the graceful path (services deregister first)."""

    @abstractmethod
    def start(self, name: str) -> dict[str, Any]:
        """Start a stopped or killed process again with the same ports and data, and wait until it is ready."""

    @abstractmethod
    def add_service(self, version: str = "v1", meta: dict[str, str] | None = None) -> dict[str, Any]:
        """Start one more instance of the user service (e.g. a v2 canary) and wait until it passes."""

    @abstractmethod
    def restore(self) -> list[str]:
        """Back to the shape `up` made (resume, start, remove added instances); returns the steps taken."""

    @abstractmethod
    def pause(self, name: str) -> dict[str, Any]:
        """SIGSTOP: alive but hung, which only timeouts notice."""

    @abstractmethod
    def resume(self, name: str) -> dict[str, Any]:
        """SIGCONT."""
