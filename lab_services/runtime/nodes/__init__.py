"""How each kind of lab process is laid out, started and asked whether it is ready."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class NodeSpec:
    """Everything needed to start one lab process again with the same ports and data (for `start NAME`)."""

    name: str
    kind: str  # "consul" | "etcd" | "prometheus" | "service"
    argv: list[str]
    ports: dict[str, int]
    host: str = "127.0.0.1"
    info: dict[str, str] = field(default_factory=dict)

    def addr(self, port_name: str) -> str:
        return f"{self.host}:{self.ports[port_name]}"
