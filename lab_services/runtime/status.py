"""What a running lab looks like, typed: addresses, leaders, processes, services. `to_dict()` is the `status --json`
object.

    status = cluster.status()
    status.consul.http[0], status.etcd.endpoints, status.prometheus.url, status.service("user-1").admin

The local engine sends `to_dict()` over its socket and `from_dict()` reads it back, so the JSON stays the one
wire format (the CLI prints it unchanged) while the code reads fields by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from lab_services.core.addresses import host_port
from lab_services.core.errors import BadInputError
from lab_services.core.instance import ServiceInstance
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.nodes import NodeSpec, consul, etcd


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
    """One instance of the lab's service: the instance (where it listens, its version), its `admin` (HTTP) address
    and its process state. `id`, `name`, `version` and `address` are the instance's, so the JSON keeps them flat."""

    instance: ServiceInstance
    admin: str
    pid: int | None
    metrics_url: str
    state: str
    container: str | None = None  # the compose runtime's container id; None for a local process

    @property
    def id(self) -> str:
        return self.instance.id

    @property
    def name(self) -> str:
        return self.instance.name

    @property
    def version(self) -> str | None:
        return self.instance.version

    @property
    def address(self) -> str:
        """host:port of its gRPC server."""
        return self.instance.address

    def to_dict(self) -> dict[str, Any]:
        """Its `status --json` object: id, name, version, address, admin, pid, metrics_url, state, container."""
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "address": self.address,
            "admin": self.admin,
            "pid": self.pid,
            "metrics_url": self.metrics_url,
            "state": self.state,
            "container": self.container,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceStatus:
        host, port = host_port(data["address"], "services[].address", "127.0.0.1:50051")
        meta = {"version": data["version"]} if data.get("version") is not None else {}
        return cls(
            instance=ServiceInstance(data["id"], data["name"], host, port, meta=meta),
            admin=data["admin"],
            pid=data["pid"],
            metrics_url=data["metrics_url"],
            state=data["state"],
            container=data.get("container"),
        )


class UnknownInstanceError(BadInputError, KeyError):
    """A service instance id the lab does not have; the message lists the ones it has."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ProcessStatus:
    """One server or service process: `host` is its own loopback address (on compose every server has one)."""

    name: str
    kind: str
    host: str
    pid: int | None
    state: str
    ports: dict[str, int]
    log_file: str | None  # the file its output goes to (local); None where the engine keeps it (compose)
    log_command: str | None  # the shell command that shows its log: `tail -f FILE` or `docker logs NAME`
    container: str | None = None

    def address(self, port: str) -> str:
        """host:port of one of this process's ports, e.g. `address("http")`."""
        return f"{self.host}:{self.ports[port]}"


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
    project: str | None = None  # the compose project that runs the lab

    def to_dict(self) -> dict[str, Any]:
        """Exactly the `status --json` object (and the local engine's answer to "status")."""
        data = asdict(self)
        data["services"] = [s.to_dict() for s in self.services]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterStatus:
        return cls(
            backend=data["backend"],
            config=ClusterConfig(**data["config"]),
            state_dir=data["state_dir"],
            consul=ConsulStatus(**data["consul"]),
            etcd=EtcdStatus(**data["etcd"]),
            prometheus=PrometheusStatus(**data["prometheus"]),
            services=[ServiceStatus.from_dict(s) for s in data["services"]],
            processes=[ProcessStatus(**p) for p in data["processes"]],
            tls=TLSStatus(**data["tls"]) if data.get("tls") else None,
            binaries=data["binaries"],
            timings=data["timings"],
            reaped=data.get("reaped", []),
            moved_ports=[MovedPort(**m) for m in data.get("moved_ports", [])],
            project=data.get("project"),
        )

    @classmethod
    def built(cls, topology: Topology, **runtime: Any) -> ClusterStatus:
        """A status from the part both runtimes build alike (`describe`) and what is the runtime's own."""
        return cls(
            consul=topology.consul,
            etcd=topology.etcd,
            prometheus=topology.prometheus,
            services=topology.services,
            processes=topology.processes,
            **runtime,
        )

    @property
    def host(self) -> str:
        return self.config.host

    def service(self, instance_id: str) -> ServiceStatus:
        """The service instance `instance_id`; KeyError naming the instances there are."""
        for service in self.services:
            if service.id == instance_id:
                return service
        raise UnknownInstanceError(
            f"no service instance {instance_id!r}; the lab has {', '.join(s.id for s in self.services)}"
        )

    def processes_of(self, kind: str) -> dict[str, ProcessStatus]:
        """The processes of `kind` ('consul', 'etcd', 'prometheus', 'service') by name."""
        return {p.name: p for p in self.processes if p.kind == kind}


@dataclass(frozen=True)
class Topology:
    """The part of a status both runtimes build the same way from their node specs."""

    consul: ConsulStatus
    etcd: EtcdStatus
    prometheus: PrometheusStatus
    services: list[ServiceStatus]
    processes: list[ProcessStatus]


def describe(
    nodes: list[NodeSpec],
    state_of: Callable[[str], str],
    pid_of: Callable[[str], int | None],
    log_of: Callable[[NodeSpec], tuple[str | None, str | None]],
    container_of: Callable[[NodeSpec], str | None] = lambda node: None,
) -> Topology:
    """Addresses, leaders, services and processes, built in one place so the CLI, dashboard, drills and
    lessons read the same shape whichever runtime runs the nodes; the callables say how that runtime runs one."""
    by_kind: dict[str, list[NodeSpec]] = {}
    for node in nodes:
        by_kind.setdefault(node.kind, []).append(node)
    consul_nodes, etcd_nodes = by_kind.get("consul", []), by_kind.get("etcd", [])
    prom = by_kind.get("prometheus", [])
    live_consul = [n for n in consul_nodes if state_of(n.name) == "running"]
    live_etcd = [n for n in etcd_nodes if state_of(n.name) == "running"]
    return Topology(
        consul=ConsulStatus(
            http=[n.addr("http") for n in consul_nodes],
            dns=consul_nodes[0].addr("dns") if consul_nodes else None,
            ui=consul_nodes[0].info["ui"] if consul_nodes else None,
            leader=consul.leader_name(live_consul),
            clients=[n.addr("http") for n in by_kind.get(consul.CLIENT_KIND, [])],
            datacenters={
                consul.DATACENTER: [n.addr("http") for n in consul_nodes],
                **{n.info["datacenter"]: [n.addr("http")] for n in by_kind.get(consul.SECOND_DC_KIND, [])},
            },
        ),
        etcd=EtcdStatus(endpoints=[n.addr("client") for n in etcd_nodes], leader=etcd.leader_name(live_etcd)),
        prometheus=PrometheusStatus(
            url=prom[0].info["url"] if prom else None, config=prom[0].info["config"] if prom else None
        ),
        services=[
            ServiceStatus(
                instance=ServiceInstance(
                    n.name, n.info["service"], n.host, n.ports["grpc"], meta={"version": n.info["version"]}
                ),
                admin=n.info["admin"],
                pid=pid_of(n.name),
                metrics_url=n.info["metrics_url"],
                state=state_of(n.name),
                container=container_of(n),
            )
            for n in by_kind.get("service", [])
        ],
        processes=[
            ProcessStatus(
                name=n.name,
                kind=n.kind,
                host=n.host,
                pid=pid_of(n.name),
                state=state_of(n.name),
                ports=dict(n.ports),
                log_file=log_of(n)[0],
                log_command=log_of(n)[1],
                container=container_of(n),
            )
            for n in nodes
        ],
    )
