"""The local lab's processes as children of the engine process: planned, started, signalled and stopped here.

Only the engine (`engine.py`) makes a `ProcessGroup`; every other caller reaches it through `LocalCluster`.
"""

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

from lab_services.core.errors import BadInputError, NotRunningError
from lab_services.core.paths import state_dir
from lab_services.core.wait import wait_until
from lab_services.discovery.etcd_watcher import EtcdWatcher
from lab_services.runtime import binaries, processes, readiness
from lab_services.runtime.cluster import Action, UnknownProcessError
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.file_sd import FileSDWriter
from lab_services.runtime.local.topology import LocalTopology
from lab_services.runtime.nodes import NodeSpec
from lab_services.runtime.status import ClusterStatus, MovedPort, TLSStatus, describe


class ProcessGroup:
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
        self.topology: LocalTopology | None = None
        self.binaries: dict[str, dict[str, str]] = {}
        self._file_sd: FileSDWriter | None = None
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
                self.topology = LocalTopology(self.config, self.workdir, paths)
                self.nodes = dict(self.topology.nodes)
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

    def add_service(self, version: str = "v1", meta: dict[str, str] | None = None) -> dict[str, Any]:
        with self._lock:
            if not self.children or self.topology is None:
                raise NotRunningError("the lab is not running; run up first")
            index = 1 + max((self._index(n.name) for n in self.nodes.values() if n.kind == "service"), default=0)
            node = self.topology.service(index, version, meta)
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
            raise NotRunningError(f"{name} is not running; `start {name}` brings it back")
        return child

    def act(self, name: str, action: str) -> dict[str, Any]:
        """One `Action` on one process (the engine passes the enum's value over its socket)."""
        action = Action.parse(action)
        with self._lock:
            if action is Action.START:
                return self._start(name)
            child = self._child(name)
            pid = child.pid
            if action is Action.KILL:
                child.kill()
                return {"name": name, "pid": pid, "action": action, "alive": processes.is_alive(pid)}
            if action is Action.STOP:
                return {"name": name, "pid": pid, "action": action, "exit_code": child.stop()}
            sig, expected = (signal.SIGSTOP, "paused") if action is Action.PAUSE else (signal.SIGCONT, "running")
            # Delivery is asynchronous: return once the kernel reports the new state.
            child.send(sig)
            wait_until(lambda: self.state_of(name) == expected, 5.0, f"{name} to be {expected}", interval=0.005)
            return {"name": name, "pid": pid, "action": action}

    def _start(self, name: str) -> dict[str, Any]:
        if name not in self.nodes:
            self._child(name)
        current = self.children.get(name)
        if current is not None and current.alive():
            return {"name": name, "pid": current.pid, "action": "start", "already_running": True}
        node = self.nodes[name]
        self._spawn(node)
        took = self._wait_ready(node)
        return {"name": name, "pid": self.children[name].pid, "action": "start", "seconds_to_ready": round(took, 3)}

    def start_together(self, names: list[str]) -> list[str]:
        with self._lock:
            for name in names:
                if name not in self.nodes:
                    self._child(name)
            self._start_group([self.nodes[n] for n in names if self.state_of(n) == "stopped"])
            return list(names)

    def added_services(self) -> list[str]:
        return [
            n.name for n in self.nodes.values() if n.kind == "service" and self._index(n.name) > self.config.services
        ]

    def remove_service(self, name: str) -> dict[str, Any]:
        with self._lock:
            if name not in self.added_services():
                raise BadInputError(
                    f"invalid argument: name: {name!r} was not added with add_service; "
                    f"added instances: {', '.join(self.added_services()) or 'none'}"
                )
            child = self.children.pop(name, None)
            code = child.stop() if child is not None and child.alive() else None
            del self.nodes[name]
            return {"name": name, "action": "remove_service", "exit_code": code}

    @staticmethod
    def _index(name: str) -> int:
        return int(name.rsplit("-", 1)[1])

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
                self._log_of,
            )
            return ClusterStatus.built(
                topology,
                backend=self.backend,
                config=ClusterConfig(**self.config.to_dict()),
                state_dir=str(self.base),
                tls=self._tls_status(),
                binaries=dict(self.binaries),
                timings={k: round(v, 3) for k, v in self.timings.items()},
                reaped=list(self.reaped),
                moved_ports=self._moved_ports(),
            )

    def _log_of(self, node: NodeSpec) -> tuple[str, str]:
        path = self.workdir / "logs" / f"{node.name}.log"
        return str(path), f"tail -f {path}"

    def _tls_status(self) -> TLSStatus | None:
        tls = self.topology.tls if self.topology else None
        if tls is None:
            return None
        return TLSStatus(
            mode=self.config.tls,
            ca=str(tls.ca.cert_path),
            client_cert=str(tls.client.cert_path),
            client_key=str(tls.client.key_path),
        )

    def _moved_ports(self) -> list[MovedPort]:
        """Each port that is not the familiar one because something else listened there at `up`."""
        moved = self.topology.ports.moved if self.topology else {}
        return [
            MovedPort(process=n.name, port_name=port_name, port=port, **moved[port])
            for n in self.nodes.values()
            for port_name, port in n.ports.items()
            if port in moved
        ]

    def _pid(self, name: str) -> int | None:
        child = self.children.get(name)
        return child.pid if child is not None and child.alive() else None
