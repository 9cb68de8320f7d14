"""What a running lab looks like, typed: addresses, leaders, processes, services. `to_dict()` is the `status --json` object.

    status = cluster.status()
    status.consul.http[0], status.etcd.endpoints, status.prometheus.url, status.service("user-1").admin

The supervisor sends `to_dict()` over its socket and `from_dict()` reads it back, so the JSON stays the one
wire format (the CLI prints it unchanged) while the code reads fields by name.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lab_services.runtime.config import ClusterConfig


@dataclass(frozen=True)
class ConsulStatus:
    http: list[str]
    dns: str | None
    ui: str | None
    leader: str | None
    clients: list[str] = field(default_factory=list)  # client agents' HTTP addresses, one per simulated node
    datacenters: dict[str, list[str]] = field(default_factory=dict)  # each datacenter's servers' HTTP addresses


@dataclass(frozen=True)
class EtcdStatus:
    endpoints: list[str]
    leader: str | None


@dataclass(frozen=True)
class PrometheusStatus:
    url: str | None
    config: str | None


@dataclass(frozen=True)
class ServiceStatus:
    """One instance of the lab's service: its gRPC `address`, its `admin` (HTTP) address and its process state."""

    id: str
    name: str
    version: str
    address: str
    admin: str
    pid: int | None
    metrics_url: str
    state: str


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    kind: str
    pid: int | None
    state: str
    ports: dict[str, int]
    log: str


@dataclass(frozen=True)
class TLSStatus:
    mode: str
    ca: str
    client_cert: str
    client_key: str


@dataclass(frozen=True)
class MovedPort:
    """A port that is not the familiar one, because something else listened there when the lab came up."""

    process: str
    port_name: str
    port: int
    preferred: int
    held_by: str


@dataclass(frozen=True)
class ClusterStatus:
    """The whole lab; the field order is the JSON's key order."""

    backend: str
    config: ClusterConfig
    state_dir: str
    consul: ConsulStatus
    etcd: EtcdStatus
    prometheus: PrometheusStatus
    services: list[ServiceStatus]
    processes: list[ProcessStatus]
    tls: TLSStatus | None
    binaries: dict[str, Any]
    timings: dict[str, float]
    reaped: list[str] = field(default_factory=list)
    moved_ports: list[MovedPort] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Exactly the `status --json` object (and the supervisor's answer to "status")."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ClusterStatus":
        return cls(
            backend=data["backend"],
            config=ClusterConfig(**data["config"]),
            state_dir=data["state_dir"],
            consul=ConsulStatus(**data["consul"]),
            etcd=EtcdStatus(**data["etcd"]),
            prometheus=PrometheusStatus(**data["prometheus"]),
            services=[ServiceStatus(**s) for s in data["services"]],
            processes=[ProcessStatus(**p) for p in data["processes"]],
            tls=TLSStatus(**data["tls"]) if data.get("tls") else None,
            binaries=data["binaries"],
            timings=data["timings"],
            reaped=data.get("reaped", []),
            moved_ports=[MovedPort(**m) for m in data.get("moved_ports", [])],
        )

    @property
    def host(self) -> str:
        return self.config.host

    def service(self, instance_id: str) -> ServiceStatus:
        """The service instance `instance_id`; KeyError naming the instances there are."""
        for service in self.services:
            if service.id == instance_id:
                return service
        raise KeyError(f"no service instance {instance_id!r}; the lab has {', '.join(s.id for s in self.services)}")

    def processes_of(self, kind: str) -> dict[str, ProcessStatus]:
        """The processes of `kind` ('consul', 'etcd', 'prometheus', 'service') by name."""
        return {p.name: p for p in self.processes if p.kind == kind}
