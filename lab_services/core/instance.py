"""One service instance, in the one vocabulary the registry, discovery and the runtime share.

    user1 = ServiceInstance("user-1", "user", "127.0.0.1", 5001, tags=("v1",), meta={"version": "v1"})
    user1.address, user1.version    # ('127.0.0.1:5001', 'v1')

A registrar registers one (with its checks, `registry.ServiceRegistration`), a watcher reports them, and
`discovery-lab status` lists the lab's own (`runtime.status.ServiceStatus`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServiceInstance:
    """One instance of a service: its id, the service's name, where it listens, and how to tell it apart.

    Tags and meta are copied, so changing the caller's dict later changes nothing.
    """

    id: str
    name: str
    host: str
    port: int
    tags: tuple[str, ...] = ()
    # A dict cannot be hashed; instances compare by every field but hash without their meta.
    meta: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "meta", dict(self.meta))

    @property
    def address(self) -> str:
        """'host:port', what a gRPC channel dials and Consul's TCP and gRPC checks use."""
        return f"{self.host}:{self.port}"

    @property
    def version(self) -> str | None:
        """The `version` meta the lab's instances carry ('v1', 'v2'), or None."""
        return self.meta.get("version")
