"""What discovery hands to clients: one service instance, and the events that say how the set of instances changed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

EVENT_KINDS = ("added", "removed", "changed")


@dataclass(frozen=True)
class Instance:
    """One instance of a service as a registry reports it, e.g. Instance('user-1', 'user', '127.0.0.1', 5001)."""

    id: str
    name: str
    host: str
    port: int
    tags: tuple[str, ...] = ()
    # A dict cannot be hashed; instances compare by every field but hash without their meta.
    meta: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def address(self) -> str:
        """'host:port', what a gRPC channel dials."""
        return f"{self.host}:{self.port}"

    @classmethod
    def from_consul(cls, entry: dict[str, Any]) -> Instance:
        """One entry of Consul's /v1/health/service/<name> answer; an empty service address means the node's."""
        service = entry["Service"]
        return cls(
            id=service["ID"],
            name=service["Service"],
            host=service.get("Address") or entry["Node"]["Address"],
            port=int(service["Port"]),
            tags=tuple(service.get("Tags") or ()),
            meta=dict(service.get("Meta") or {}),
        )

    @classmethod
    def from_etcd(cls, data: dict[str, Any]) -> Instance:
        """One value decoded by `lab_services.registry.etcd.parse_instance`."""
        return cls(
            id=data["id"],
            name=data["name"],
            host=data["host"],
            port=int(data["port"]),
            tags=tuple(data["tags"]),
            meta=dict(data["meta"]),
        )


@dataclass(frozen=True)
class DiscoveryEvent:
    """A change a watcher saw: `kind` is 'added', 'removed' or 'changed'; `at` is time.time() when it was seen."""

    kind: str
    instance: Instance
    at: float = field(default_factory=time.time)
    source: str = ""

    def __str__(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.at)) + f".{int(self.at * 1000) % 1000:03d}"
        return f"{stamp} {self.source} {self.kind:<7} {self.instance.id} {self.instance.address}"
