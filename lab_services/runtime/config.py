"""The shape of a lab cluster (how many servers, members and services, which registries, TLS), validated up front."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lab_services.core.errors import BadInputError
from lab_services.core.network import require_lab_host

REGISTRIES = ("none", "consul", "etcd", "both")
CONFIG_STORES = ("none", "consul", "etcd")
MAX_CONSUL_CLIENTS = 9  # client agent i binds 127.0.0.(50+i)


@dataclass
class ClusterConfig:
    """The shape of a lab cluster; the defaults are the full topology a workshop starts with."""

    consul_servers: int = 3
    etcd_members: int = 3
    services: int = 3
    prometheus: bool = True
    service_name: str = "user"
    registry: str = "both"
    host: str = "127.0.0.1"
    consul_http_port: int | None = None
    # "distinct": instance i listens on 127.0.0.(10+i), all on one port, as Consul DNS clients need.
    instance_addresses: str = "shared"
    tls: str = "off"  # "tls": services serve gRPC over TLS; "mtls": and require client certificates
    # "consul" / "etcd": every instance follows its runtime settings there and applies them live (lesson 10).
    config_store: str = "none"
    # Client agents, one per simulated node on its own loopback address; services register with their node's.
    consul_clients: int = 0
    # 2 adds a second Consul datacenter ("dc2", one server) joined to the first over the WAN.
    datacenters: int = 1

    def validate(self) -> ClusterConfig:
        require_lab_host(self.host, "host")
        for field in ("consul_servers", "etcd_members"):
            if getattr(self, field) not in (0, 1, 3):
                raise BadInputError(f"invalid argument: {field}: {getattr(self, field)}; use 0, 1 or 3")
        if not 0 <= self.services <= 20:
            raise BadInputError(f"invalid argument: services: {self.services}; use 0 to 20 instances")
        if self.registry not in REGISTRIES:
            raise BadInputError(f"invalid argument: registry: {self.registry!r}; use one of {', '.join(REGISTRIES)}")
        if self.tls not in ("off", "tls", "mtls"):
            raise BadInputError(f"invalid argument: tls: {self.tls!r}; use off, tls or mtls")
        if self.instance_addresses not in ("shared", "distinct"):
            raise BadInputError(
                f"invalid argument: instance_addresses: {self.instance_addresses!r}; use shared or distinct"
            )
        if self.config_store not in CONFIG_STORES:
            raise BadInputError(
                f"invalid argument: config_store: {self.config_store!r}; use one of {', '.join(CONFIG_STORES)}"
            )
        if self.config_store != "none" and not (
            self.consul_servers if self.config_store == "consul" else self.etcd_members
        ):
            raise BadInputError(
                f"invalid argument: config_store: settings are kept in {self.config_store} but it has no servers"
            )
        if self.registry in ("consul", "both") and self.services and not self.consul_servers:
            raise BadInputError("invalid argument: registry: services register in Consul but consul_servers is 0")
        if not 0 <= self.consul_clients <= MAX_CONSUL_CLIENTS:
            raise BadInputError(
                f"invalid argument: consul_clients: {self.consul_clients}; use 0 to {MAX_CONSUL_CLIENTS} client agents"
            )
        if self.consul_clients and not self.consul_servers:
            raise BadInputError(
                "invalid argument: consul_clients: client agents need servers to join but consul_servers is 0"
            )
        if self.datacenters not in (1, 2):
            raise BadInputError(f"invalid argument: datacenters: {self.datacenters}; use 1 or 2")
        if self.datacenters == 2 and not self.consul_servers:
            raise BadInputError(
                "invalid argument: datacenters: a second datacenter joins the first over the WAN "
                "but consul_servers is 0"
            )
        if self.registry in ("etcd", "both") and self.services and not self.etcd_members:
            raise BadInputError("invalid argument: registry: services register in etcd but etcd_members is 0")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def covers(self, other: ClusterConfig) -> bool:
        """True when a running cluster of this shape can serve a lesson that asked for `other`."""
        return (
            self.consul_servers >= other.consul_servers
            and self.etcd_members >= other.etcd_members
            and self.services >= other.services
            and (self.prometheus or not other.prometheus)
            and self.service_name == other.service_name
            and (self.registry == other.registry or self.registry == "both" or other.registry == "none")
            and (self.instance_addresses == other.instance_addresses or other.instance_addresses == "shared")
            and self.tls == other.tls
            and (self.config_store == other.config_store or other.config_store == "none")
            # Where services register differs (a server's agent or their node's client agent): never mix.
            and self.consul_clients == other.consul_clients
            and self.datacenters >= other.datacenters
        )


def union(running: ClusterConfig, wanted: ClusterConfig) -> ClusterConfig:
    """The smallest shape that serves both the lesson that started the lab and the one asking now."""
    return ClusterConfig(
        consul_servers=max(running.consul_servers, wanted.consul_servers),
        etcd_members=max(running.etcd_members, wanted.etcd_members),
        services=max(running.services, wanted.services),
        prometheus=running.prometheus or wanted.prometheus,
        service_name=wanted.service_name,
        registry=wanted.registry if running.registry == wanted.registry else "both",
        host=running.host,
        consul_http_port=running.consul_http_port,
        tls=wanted.tls,
        consul_clients=wanted.consul_clients,
        datacenters=max(running.datacenters, wanted.datacenters),
        instance_addresses="distinct"
        if "distinct" in (running.instance_addresses, wanted.instance_addresses)
        else "shared",
        config_store=wanted.config_store if wanted.config_store != "none" else running.config_store,
    )
