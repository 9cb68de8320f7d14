"""Where each process of a local lab listens and with which flags: the plan the engine starts (compose's twin is
`runtime/compose/topology.py`, which reads the same from docker-compose.yml's fixed addresses)."""

from __future__ import annotations

from pathlib import Path

from lab_services.core.ports import PortAllocator
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.nodes import NodeSpec, consul, etcd, prometheus, service
from lab_services.tls import TLSMaterial

# Instances that may get their own loopback address; the shared port and the TLS certificate cover them all.
MAX_OWN_ADDRESSES = 40


class LocalTopology:
    """The plan for one `config`: free ports found now, TLS material made now, the nodes in start order."""

    def __init__(self, config: ClusterConfig, workdir: Path, paths: dict[str, Path]):
        self.config = config
        self.paths = paths
        self.ports = ports = PortAllocator(config.host)
        self.tls: TLSMaterial | None = None
        if config.tls != "off":
            # One server certificate for every instance, valid for every address an instance may get.
            addresses = [service.own_address(i) for i in range(1, MAX_OWN_ADDRESSES + 1)]
            self.tls = TLSMaterial.create(workdir / "tls", hosts=["127.0.0.1", "localhost", *addresses])
        checks = {"check_ca": self.tls.ca, "check_identity": self.tls.client} if self.tls else {}
        servers = (
            consul.plan(config.consul_servers, paths["consul"], ports, workdir, config.consul_http_port, **checks)
            if config.consul_servers
            else []
        )
        clients = consul.plan_clients(config.consul_clients, paths["consul"], ports, workdir, servers, **checks)
        if config.datacenters == 2:
            clients.append(consul.plan_second_datacenter(paths["consul"], ports, workdir, servers))
        members = etcd.plan(config.etcd_members, paths["etcd"], ports, workdir) if config.etcd_members else []
        nodes = [*servers, *clients, *members]
        if config.prometheus:
            etcd_services = bool(members) and config.registry in ("etcd", "both")
            nodes.append(
                prometheus.plan(
                    paths["prometheus"],
                    ports,
                    workdir,
                    servers,
                    members,
                    config.service_name,
                    etcd_services=etcd_services,
                )
            )
        self.nodes = {n.name: n for n in nodes}
        # The shared port must be free on every address an instance may get, not just on 127.0.0.1.
        self.shared_port = (
            ports.free(5000, hosts=tuple(service.own_address(i) for i in range(1, MAX_OWN_ADDRESSES + 1)))
            if config.instance_addresses == "distinct"
            else None
        )
        for i in range(1, config.services + 1):
            node = self.service(i)
            self.nodes[node.name] = node

    def service(self, index: int, version: str = "v1", meta: dict[str, str] | None = None) -> NodeSpec:
        """Instance `index`, registered where the lab's registry says, with the lab's TLS and config-store flags."""
        cfg = self.config
        consul_nodes = (
            [self._registration_agent(index)] if cfg.consul_servers and cfg.registry in ("consul", "both") else []
        )
        etcd_nodes = [n for n in self.nodes.values() if n.kind == "etcd"] if cfg.registry in ("etcd", "both") else []
        return service.plan(
            index,
            self.ports,
            cfg.service_name,
            cfg.registry,
            consul_nodes,
            etcd_nodes,
            version=version,
            shared_port=self.shared_port,
            meta=meta,
            options=[*self._tls_flags(), *self._config_flags()],
        )

    def _tls_flags(self) -> list[str]:
        if not self.tls:
            return []
        flags = ["--tls-cert", str(self.tls.server.cert_path), "--tls-key", str(self.tls.server.key_path)]
        flags.append("--check-tls-verify")
        if self.config.tls == "mtls":
            flags += ["--tls-ca", str(self.tls.ca.cert_path), "--mtls"]
        return flags

    def _config_flags(self) -> list[str]:
        """`--config-store` and its address for every instance, when the lab keeps runtime settings in a store."""
        store = self.config.config_store
        if store == "none":
            return []
        if store == "consul":
            address = self.nodes["consul-1"].addr("http")
        else:
            address = ",".join(n.addr("client") for n in self.nodes.values() if n.kind == "etcd")
        return ["--config-store", store, "--config-address", address]

    def _registration_agent(self, index: int) -> NodeSpec:
        """The agent instance `index` registers with: its node's client agent (spread round the nodes), as on a
        real machine, or the first server's agent when the lab runs no client agents."""
        clients = [n for n in self.nodes.values() if n.kind == consul.CLIENT_KIND]
        return clients[(index - 1) % len(clients)] if clients else self.nodes["consul-1"]
