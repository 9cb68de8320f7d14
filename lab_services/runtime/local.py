"""The local runtime: real Consul, etcd, Prometheus and user-service processes as children of this interpreter."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from lab_services.core.paths import state_dir
from lab_services.core.ports import PortAllocator
from lab_services.core.wait import wait_until
from lab_services.discovery.etcd_watcher import EtcdWatcher
from lab_services.runtime import binaries, processes, readiness
from lab_services.runtime.cleanup import clean_lab_state
from lab_services.runtime.cluster import Cluster, UnknownProcessError
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.file_sd import FileSDWriter
from lab_services.runtime.nodes import NodeSpec, consul, etcd, prometheus, service
from lab_services.runtime.status import ClusterStatus, MovedPort, TLSStatus, describe
from lab_services.tls import TLSMaterial


class LocalCluster(Cluster):
    """Owns its processes: they stop with `down()`, with this interpreter, or at the next `up()` after a crash."""

    backend = "local"

    def __init__(self, config: ClusterConfig | None = None, base: Path | None = None, ready_timeout: float = 60.0):
        self.config = (config or ClusterConfig()).validate()
        self.base = base or state_dir()
        self.workdir = self.base / "cluster"
        self.ready_timeout = ready_timeout
        self.nodes: dict[str, NodeSpec] = {}
        self.children: dict[str, processes.Child] = {}
        self.reaped: list[str] = []
        self.timings: dict[str, float] = {}
        self.tls = None
        self.binaries: dict[str, dict[str, str]] = {}
        self._file_sd: FileSDWriter | None = None
        self._ports: PortAllocator | None = None
        self._lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------------------------
    def up(self) -> ClusterStatus:
        with self._lock:
            if self.children:
                return self.status()
            began = time.monotonic()
            self.reaped = [f"{r.name} (pid {r.pid})" for r in processes.reap_orphans(self.base)]
            paths = {name: binaries.find_binary(name) for name in ("consul", "etcd", "prometheus")}
            # Asked once per up (each version costs a process, and dashboards ask for status every second or
            # two), and in the background: asked first, the four version commands delayed every server's
            # start by 0.16-0.8 s on two busy cores.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="versions") as versions:
                described = versions.submit(binaries.describe_binaries)
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir.mkdir(parents=True)
                self._plan(paths)
                started = time.monotonic()
                self.timings["before_spawn"] = started - began
                try:
                    # Everything starts at once: a service spends its first second importing gRPC, which
                    # overlaps the raft elections, and its registrar retries until Consul and etcd answer.
                    self._start_group(list(self.nodes.values()))
                    self.timings["all_ready"] = time.monotonic() - started
                    self._start_file_sd()
                except BaseException:
                    self.down()
                    raise
                self.binaries = described.result()
            return self.status()

    def down(self) -> None:
        with self._lock:
            if self._file_sd is not None:
                self._file_sd.stop()
                self._file_sd = None
            # Services first, so they deregister while Consul and etcd still answer.
            order = sorted(self.children.values(), key=lambda c: self.nodes[c.name].kind != "service")
            for child in order:
                child.stop(timeout=10.0)
            self.children.clear()

    def _start_file_sd(self) -> None:
        """Prometheus finds instances registered in etcd through a target file this writer keeps current."""
        prom = self.nodes.get("prometheus")
        if prom is None or not prom.info.get("etcd_targets"):
            return
        endpoints = [n.addr("client") for n in self.nodes.values() if n.kind == "etcd"]
        self._file_sd = FileSDWriter(
            EtcdWatcher(self.config.service_name, endpoints), prom.info["etcd_targets"]
        ).start()

    def _plan(self, paths: dict[str, Path]) -> None:
        cfg = self.config
        self._ports = ports = PortAllocator(cfg.host)
        self.tls = None
        if cfg.tls != "off":
            # One server certificate for every instance, valid for every address an instance may get.
            hosts = ["127.0.0.1", "localhost", *(service.own_address(i) for i in range(1, 41))]
            self.tls = TLSMaterial.create(self.workdir / "tls", hosts=hosts)
        consul_nodes = (
            consul.plan(
                cfg.consul_servers,
                paths["consul"],
                ports,
                self.workdir,
                cfg.consul_http_port,
                check_ca=self.tls.ca if self.tls else None,
                check_identity=self.tls.client if self.tls else None,
            )
            if cfg.consul_servers
            else []
        )
        client_nodes = consul.plan_clients(
            cfg.consul_clients,
            paths["consul"],
            ports,
            self.workdir,
            consul_nodes,
            check_ca=self.tls.ca if self.tls else None,
            check_identity=self.tls.client if self.tls else None,
        )
        if cfg.datacenters == 2:
            client_nodes.append(consul.plan_second_datacenter(paths["consul"], ports, self.workdir, consul_nodes))
        etcd_nodes = etcd.plan(cfg.etcd_members, paths["etcd"], ports, self.workdir) if cfg.etcd_members else []
        nodes = [*consul_nodes, *client_nodes, *etcd_nodes]
        if cfg.prometheus:
            etcd_services = bool(etcd_nodes) and cfg.registry in ("etcd", "both")
            nodes.append(
                prometheus.plan(
                    paths["prometheus"],
                    ports,
                    self.workdir,
                    consul_nodes,
                    etcd_nodes,
                    cfg.service_name,
                    etcd_services=etcd_services,
                )
            )
        self.nodes = {n.name: n for n in nodes}
        # The shared port must be free on every address an instance may get, not just on 127.0.0.1.
        self._shared_port = (
            ports.free(5000, hosts=tuple(service.own_address(i) for i in range(1, 41)))
            if cfg.instance_addresses == "distinct"
            else None
        )
        for i in range(1, cfg.services + 1):
            node = self._plan_service(i)
            self.nodes[node.name] = node

    def _plan_service(self, index: int, version: str = "v1", meta: dict[str, str] | None = None) -> NodeSpec:
        cfg = self.config
        consul_nodes = (
            [self._registration_agent(index)] if cfg.consul_servers and cfg.registry in ("consul", "both") else []
        )
        etcd_nodes = [n for n in self.nodes.values() if n.kind == "etcd"] if cfg.registry in ("etcd", "both") else []
        tls_flags = []
        if self.tls:
            tls_flags = [
                "--tls-cert",
                str(self.tls.server.cert_path),
                "--tls-key",
                str(self.tls.server.key_path),
                "--check-tls-verify",
            ]
            if cfg.tls == "mtls":
                tls_flags += ["--tls-ca", str(self.tls.ca.cert_path), "--mtls"]
        return service.plan(
            index,
            self._ports,
            cfg.service_name,
            cfg.registry,
            consul_nodes,
            etcd_nodes,
            version=version,
            shared_port=self._shared_port,
            meta=meta,
            tls=tls_flags,
            config=self._config_flags(),
        )

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

    def add_service(self, version: str = "v1", meta: dict[str, str] | None = None) -> dict[str, Any]:
        with self._lock:
            if not self.children:
                raise ProcessLookupError("the lab is not running; run up first")
            index = 1 + max((self._index(n.name) for n in self.nodes.values() if n.kind == "service"), default=0)
            node = self._plan_service(index, version, meta)
            self.nodes[node.name] = node
            self._spawn(node)
            try:
                took = self._wait_ready(node)
            except BaseException:
                self.children.pop(node.name).stop()
                del self.nodes[node.name]
                raise
            return {
                "name": node.name,
                "pid": self.children[node.name].pid,
                "address": node.addr("grpc"),
                "version": version,
                "action": "add_service",
                "seconds_to_ready": round(took, 3),
            }

    def _start_group(self, nodes: list[NodeSpec]) -> None:
        """Spawn on this thread (so the parent-death signal is armed), then wait for readiness in parallel.

        Prometheus starts once Consul has a leader: its Consul discovery sleeps 15 s after a failed first
        query, which made a cold start take 20 s to the first scrape instead of about 6.
        """
        early = [n for n in nodes if n.kind != "prometheus"]
        late = [n for n in nodes if n.kind == "prometheus"]
        for node in early:
            self._spawn(node)
        with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            waits = {node.name: pool.submit(self._wait_ready, node) for node in early}
            for node in early:
                if node.kind == "consul":
                    waits[node.name].result()
            for node in late:
                self._spawn(node)
                waits[node.name] = pool.submit(self._wait_ready, node)
            for wait in waits.values():
                wait.result()

    def _spawn(self, node: NodeSpec) -> None:
        log = self.workdir / "logs" / f"{node.name}.log"
        self.children[node.name] = processes.spawn(node.name, node.argv, log_path=log, base=self.base)

    def _ready_check(self, node: NodeSpec) -> Callable[[], bool]:
        return readiness.ready_check(node, self.nodes.values(), self.config.registry, self._consul_agent())

    def _wait_ready(self, node: NodeSpec) -> float:
        child = self.children[node.name]
        took = readiness.wait_ready(
            node,
            self._ready_check(node),
            lambda: None if child.alive() else child.popen.poll(),
            child.tail,
            str(child.log_path),
            self.ready_timeout,
        )
        self.timings[f"{node.name}_ready"] = took
        return took

    def _consul_agent(self) -> NodeSpec | None:
        """A running Consul server to read the catalog from: consul-1 unless it is down (a chaos run kills leaders)."""
        servers = [n for n in self.nodes.values() if n.kind == "consul"]
        return next((n for n in servers if self.state_of(n.name) == "running"), servers[0] if servers else None)

    # -- one process at a time -------------------------------------------------------------------------
    def _child(self, name: str) -> processes.Child:
        if name not in self.nodes:
            raise UnknownProcessError(
                f"no lab process named {name!r}; the lab has: {', '.join(self.nodes) or 'nothing (run up first)'}"
            )
        child = self.children.get(name)
        if child is None or not child.alive():
            raise ProcessLookupError(f"{name} is not running; `start {name}` brings it back")
        return child

    def kill(self, name: str) -> dict[str, Any]:
        with self._lock:
            child = self._child(name)
            pid = child.pid
            child.kill()
            return {"name": name, "pid": pid, "action": "kill", "alive": processes.is_alive(pid)}

    def stop(self, name: str) -> dict[str, Any]:
        with self._lock:
            child = self._child(name)
            pid = child.pid
            code = child.stop()
            return {"name": name, "pid": pid, "action": "stop", "exit_code": code}

    def start(self, name: str) -> dict[str, Any]:
        with self._lock:
            if name not in self.nodes:
                self._child(name)
            current = self.children.get(name)
            if current is not None and current.alive():
                return {"name": name, "pid": current.pid, "action": "start", "already_running": True}
            node = self.nodes[name]
            self._spawn(node)
            took = self._wait_ready(node)
            return {"name": name, "pid": self.children[name].pid, "action": "start", "seconds_to_ready": round(took, 3)}

    def restore(self) -> list[str]:
        """Back to a fresh `up`: resume the paused, start the stopped, remove instances added since, then what lessons left.

        What lessons left (registrations, KV and etcd keys, faults, users) is `cleanup.clean_lab_state`'s job.

        Stopped servers start together and are waited for in parallel: one Consul or etcd server alone
        cannot elect a leader when its peers are down too, so starting them one by one could never succeed.
        """
        with self._lock:
            steps = []
            for name in [n for n in self.nodes if self.state_of(n) == "paused"]:
                self.resume(name)
                steps.append(f"resumed {name}")
            added = [
                n.name
                for n in self.nodes.values()
                if n.kind == "service" and self._index(n.name) > self.config.services
            ]
            for name in added:
                if self.state_of(name) != "stopped":
                    self.children[name].stop()
                self.children.pop(name, None)
                del self.nodes[name]
                steps.append(f"removed {name}")
            stopped = [n for n in self.nodes.values() if self.state_of(n.name) == "stopped"]
            self._start_group(stopped)
            steps += [f"started {n.name}" for n in stopped]
            return steps + clean_lab_state(self.status())

    @staticmethod
    def _index(name: str) -> int:
        return int(name.rsplit("-", 1)[1])

    def pause(self, name: str) -> dict[str, Any]:
        return self._signal(name, signal.SIGSTOP, "pause", "paused")

    def resume(self, name: str) -> dict[str, Any]:
        return self._signal(name, signal.SIGCONT, "resume", "running")

    def _signal(self, name: str, sig: signal.Signals, action: str, expected: str) -> dict[str, Any]:
        """Send `sig` and return once the kernel reports the new state (delivery is asynchronous)."""
        with self._lock:
            child = self._child(name)
            child.send(sig)
            wait_until(lambda: self.state_of(name) == expected, 5.0, f"{name} to be {expected}", interval=0.005)
            return {"name": name, "pid": child.pid, "action": action}

    # -- what is running -------------------------------------------------------------------------------
    def state_of(self, name: str) -> str:
        child = self.children.get(name)
        if child is None or not child.alive():
            return "stopped"
        try:
            return "paused" if psutil.Process(child.pid).status() == psutil.STATUS_STOPPED else "running"
        except psutil.Error:
            return "stopped"

    def status(self) -> ClusterStatus:
        with self._lock:
            topology = describe(
                list(self.nodes.values()),
                self.state_of,
                self._pid,
                lambda node: str(self.workdir / "logs" / f"{node.name}.log"),
            )
            return ClusterStatus.built(
                topology,
                backend=self.backend,
                config=ClusterConfig(**self.config.to_dict()),
                state_dir=str(self.base),
                tls=None
                if not self.tls
                else TLSStatus(
                    mode=self.config.tls,
                    ca=str(self.tls.ca.cert_path),
                    client_cert=str(self.tls.client.cert_path),
                    client_key=str(self.tls.client.key_path),
                ),
                binaries=dict(self.binaries),
                timings={k: round(v, 3) for k, v in self.timings.items()},
                reaped=list(self.reaped),
                moved_ports=self._moved_ports(),
            )

    def _moved_ports(self) -> list[MovedPort]:
        """Each port that is not the familiar one because something else listened there at `up`."""
        moved = self._ports.moved if self._ports else {}
        return [
            MovedPort(process=n.name, port_name=port_name, port=port, **moved[port])
            for n in self.nodes.values()
            for port_name, port in n.ports.items()
            if port in moved
        ]

    def _pid(self, name: str) -> int | None:
        child = self.children.get(name)
        return child.pid if child is not None and child.alive() else None
