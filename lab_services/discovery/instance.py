"""What discovery hands to clients: service instances read from Consul and etcd, and the events that say how the set
of instances changed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from lab_services.core.instance import ServiceInstance

EVENT_KINDS = ("added", "removed", "changed")


def instance_from_consul(entry: dict[str, Any]) -> ServiceInstance:
    """One entry of Consul's /v1/health/service/<name> answer; an empty service address means the node's."""
    service = entry["Service"]
    return ServiceInstance(
        id=service["ID"],
        name=service["Service"],
        host=service.get("Address") or entry["Node"]["Address"],
        port=int(service["Port"]),
        tags=tuple(service.get("Tags") or ()),
        meta=dict(service.get("Meta") or {}),
    )


def instance_from_etcd(data: dict[str, Any]) -> ServiceInstance:
    """One value decoded by `lab_services.registry.etcd.parse_instance`."""
    return ServiceInstance(
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
    instance: ServiceInstance
    at: float = field(default_factory=time.time)
    source: str = ""

    def __str__(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.at)) + f".{int(self.at * 1000) % 1000:03d}"
        return f"{stamp} {self.source} {self.kind:<7} {self.instance.id} {self.instance.address}"
