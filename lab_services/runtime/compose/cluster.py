"""`ComposeCluster`: the compose runtime's adapter of the Cluster port: the lab as containers of one compose project.

`docker compose` starts and removes the stack as a whole; the Docker SDK drives one container at a time
(kill = SIGKILL, stop = SIGTERM so a service deregisters first, pause = the cgroup freezer). No state
lives in this object that the engine does not also hold: a fresh process (`discovery-lab status` after
`up` returned) finds the stack by its compose project name and the labels on its containers.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types

from lab_services.core.errors import BadInputError, LabError, NotRunningError, UnsupportedError
from lab_services.core.paths import state_dir
from lab_services.core.ports import PortInUseError, holder, is_free
from lab_services.runtime import readiness
from lab_services.runtime.cluster import Action, Cluster, NotReadyError, UnknownProcessError
from lab_services.runtime.compose import engine, topology
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.nodes import NodeSpec
from lab_services.runtime.status import ClusterStatus, describe

# The one shape docker-compose.yml runs: every lesson's ClusterConfig that this covers runs on it.
SHAPE = ClusterConfig(
    consul_servers=3,
    etcd_members=3,
    services=topology.INSTANCES,
    prometheus=True,
    service_name=topology.SERVICE_NAME,
    registry="both",
    consul_http_port=topology.CONSUL_PORTS["http"],
    instance_addresses="distinct",
)
ADDED = "lab.added"
VERSION = "lab.version"
SERVICE_LABEL = "com.docker.compose.service"
PROMETHEUS_CONFIG = str(engine.COMPOSE_DIR / "prometheus" / "prometheus.yml")


# What the compose stack cannot run yet, each with the way round it: (field, value it needs, what, instead).
LOCAL_ONLY = (
    ("tls", "off", "TLS instances (`--tls`)", "lesson 06 itself runs on compose; for instances that serve TLS"),
    ("config_store", "none", "`--config-store` yet", "for instances that follow a config store"),
    ("consul_clients", 0, "Consul client agents (`--consul-clients`) yet", "for client agents"),
    ("datacenters", 1, "second datacenter (`--datacenters 2`) yet", "for two datacenters"),
)


def shape_for(wanted: ClusterConfig) -> ClusterConfig:
    """The compose stack's shape when it serves `wanted`; UnsupportedError naming the way round when it cannot."""
    wanted.validate()
    for field, plain, what, why in LOCAL_ONLY:
        if getattr(wanted, field) != plain:
            raise UnsupportedError(
                "compose",
                what,
                f"{why}, use the local runtime: `discovery-lab --backend local up ...` (or unset LAB_BACKEND)",
            )
    if not SHAPE.covers(wanted):
        raise UnsupportedError(
            "compose",
            f"room for {wanted.consul_servers} Consul servers, {wanted.etcd_members} etcd members and "
            f"{wanted.services} instances on {wanted.instance_addresses} addresses (it runs 3, 3 and {SHAPE.services})",
            "use `add_service` for more instances, or the local runtime (unset LAB_BACKEND)",
        )
    return SHAPE


def _state(container: Any) -> str:
    if container is None:
        return "stopped"
    return {"running": "running", "paused": "paused"}.get(container.status, "stopped")


class ComposeCluster(Cluster):
    """The compose project `project` on the local Docker engine; containers outlive this object and its process."""

    backend = "compose"

    def __init__(
        self,
        config: ClusterConfig | None = None,
        project: str = topology.PROJECT,
        base: Path | None = None,
        ready_timeout: float = 90.0,
    ):
        self.config = shape_for(config or SHAPE)
        self.project = project
        self.base = base or state_dir()
        self.data_dir = self.base / "compose"
        self.ready_timeout = ready_timeout
        self.timings: dict[str, float] = {}
        self._client: docker.DockerClient | None = None
        self._binaries: dict[str, dict[str, str]] | None = None
        self._lock = threading.RLock()

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = engine.client()
        return self._client

    # -- finding the stack -----------------------------------------------------------------------------
    def containers(self) -> dict[str, Any]:
        """The project's containers by compose service name (stopped ones too)."""
        found = self.client.containers.list(all=True, filters={"label": f"com.docker.compose.project={self.project}"})
        return {c.labels.get(SERVICE_LABEL, c.name): c for c in found}

    def running(self) -> bool:
        """True while any container of the project exists, running or not: `up` made it and `down` did not remove it."""
        return bool(self.containers())

    def published(self) -> dict[str, Any] | None:
        """The running lab's state (`{"status": ...}`), or None."""
        return {"status": self.status().to_dict()} if self.running() else None

    @property
    def location(self) -> str:
        return f"compose project {self.project}"

    @property
    def start_command(self) -> str:
        return "discovery-lab --backend compose up"

    def launch(self, config: ClusterConfig, owner_pid: int | None = None) -> ClusterStatus:
        """Start the stack if `config` fits its one shape. A compose lab has no owner: its containers outlive the
        kernel that asked (`discovery-lab --backend compose down` removes them)."""
        shape_for(config)
        return self._up()

    def ensure(self, wanted: ClusterConfig, owner_pid: int | None = None) -> None:
        """The stack runs one shape, which serves every lesson it can run at all: start it unless it runs."""
        self.launch(wanted)

    def nodes(self, containers: dict[str, Any] | None = None) -> list[NodeSpec]:
        """Consul, etcd and Prometheus, then every user-service container the project has, by index."""
        containers = self.containers() if containers is None else containers
        services = sorted(
            (int(name.rsplit("-", 1)[1]), c)
            for name, c in containers.items()
            if name.startswith(f"{topology.SERVICE_NAME}-")
        )
        return [
            *topology.server_nodes(PROMETHEUS_CONFIG),
            *(topology.service_node(i, c.labels.get(VERSION, "v1")) for i, c in services),
        ]

    # -- the stack as a whole --------------------------------------------------------------------------
    def _compose(self, *args: str, files: list[Path] | None = None, timeout: float = 300.0) -> str:
        argv = [*engine.compose_argv(self.project, files or engine.files_for("official")), *args]
        out = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=engine.compose_env(self.data_dir)
        )
        if out.returncode != 0:
            raise LabError(
                f"`docker compose {' '.join(args)}` failed (exit {out.returncode}):\n{out.stderr.strip()[-2000:]}"
            )
        return out.stdout

    def _up(self) -> ClusterStatus:
        with self._lock:
            if self.running():
                return self.status()
            engine.compose_version()
            images = engine.image_set(self.client)
            files = engine.files_for(images)
            engine.missing_images(
                self.client, engine.compose_config(files, self.project, engine.compose_env(self.data_dir))
            )
            self._check_ports()
            for node in topology.consul_nodes():
                # Made here, as the caller: a directory the engine creates for a bind mount belongs to root.
                (self.data_dir / node.name).mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            try:
                try:
                    self._compose("up", "--detach", "--remove-orphans", files=files)
                except LabError as err:
                    if images != "official":
                        raise
                    raise LabError(
                        f"{err}\nWith no registry in reach, build local images with `make compose-images` "
                        "and set LAB_COMPOSE_IMAGES=ci"
                    ) from None
                # The same readiness as the local runtime (a raft leader, etcd healthy, Prometheus ready, each
                # service passing in Consul and listed in etcd), asked of the servers, not of docker's healthchecks.
                self._wait_group(self.nodes())
                self.timings["all_ready"] = time.monotonic() - started
                self._check_running()
            except BaseException:
                self.down()
                raise
            return self.status()

    def _check_running(self) -> None:
        """Every container of the stack runs, helpers without a readiness check of their own (etcd-sd) too."""
        for name, container in self.containers().items():
            if container.status != "running":
                raise NotReadyError(
                    f"{name} is {container.status} (exit code {container.attrs['State']['ExitCode']}); "
                    f"last lines of `docker logs {container.name}`:\n{self._tail(container)}"
                )

    def _check_ports(self) -> None:
        """Every address and port the stack binds must be free; say who holds one that is not."""
        for node in [*topology.server_nodes(""), *(topology.service_node(i) for i in range(1, topology.INSTANCES + 1))]:
            for name, port in node.ports.items():
                if not is_free(node.host, port):
                    raise PortInUseError(
                        f"port {port} on {node.host} ({node.name} {name}) is in use by {holder(port, node.host)}; "
                        f"stop it, or if it is an earlier compose lab run `discovery-lab --backend compose down`"
                    )

    def down(self, volumes: bool = False) -> None:
        """Services first (SIGTERM: they deregister while Consul and etcd still answer), then the whole project.

        The servers' data (etcd's and Prometheus's named volumes, Consul's data directories) stays unless
        `volumes`; containers, networks and anonymous volumes never do.
        """
        with self._lock:
            data = self._consul_dirs() if volumes else set()
            services = [c for name, c in self.containers().items() if name.startswith(f"{topology.SERVICE_NAME}-")]
            with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
                list(pool.map(self._graceful_stop, services))
            self._compose("down", "--remove-orphans", "--timeout", "2", *(["--volumes"] if volumes else []))
            for container in self.containers().values():
                container.remove(v=True, force=True)
            for path in data:
                shutil.rmtree(path, ignore_errors=True)

    def _consul_dirs(self) -> set[Path]:
        """Consul's data directories: this lab's, and those the running containers mount (another state dir's)."""
        mounted = {
            Path(m["Source"])
            for name, c in self.containers().items()
            if name.startswith("consul-")
            for m in c.attrs["Mounts"]
            if m["Type"] == "bind" and m["Source"] == m["Destination"]
        }
        return mounted | {self.data_dir / n.name for n in topology.consul_nodes()}

    @staticmethod
    def _graceful_stop(container: Any) -> None:
        if container.status == "paused":
            container.unpause()
        if container.status in ("running", "paused"):
            container.stop(timeout=10)

    # -- readiness -------------------------------------------------------------------------------------
    def _wait_group(self, nodes: list[NodeSpec]) -> None:
        with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            for wait in [pool.submit(self._wait_ready, node, nodes) for node in nodes]:
                wait.result()

    def _wait_ready(self, node: NodeSpec, nodes: list[NodeSpec] | None = None) -> float:
        container = self.client.containers.get(self._container_name(node.name))

        def exit_code() -> int | None:
            container.reload()
            return None if container.status in ("running", "paused") else container.attrs["State"]["ExitCode"]

        took = readiness.wait_ready(
            node,
            readiness.ready_check(node, nodes or self.nodes(), self.config.registry),
            exit_code,
            lambda: self._tail(container),
            f"`docker logs {container.name}`",
            self.ready_timeout,
        )
        self.timings[f"{node.name}_ready"] = took
        return took

    @staticmethod
    def _tail(container: Any, lines: int = 20) -> str:
        return container.logs(tail=lines).decode(errors="replace")

    def _container_name(self, name: str) -> str:
        return self._container(name, must_run=False).name

    # -- one container at a time -----------------------------------------------------------------------
    def _container(self, name: str, must_run: bool = True) -> Any:
        containers = self.containers()
        if name not in containers:
            raise UnknownProcessError(
                f"no lab process named {name!r}; the lab has: "
                f"{', '.join(n.name for n in self.nodes(containers)) if containers else 'nothing (run up first)'}"
            )
        container = containers[name]
        if must_run and _state(container) == "stopped":
            raise NotRunningError(f"{name} is not running; `start {name}` brings it back")
        return container

    @staticmethod
    def _pid(container: Any) -> int | None:
        return container.attrs["State"]["Pid"] or None if _state(container) != "stopped" else None

    def act(self, name: str, action: Action) -> dict[str, Any]:
        action = Action.parse(action)
        with self._lock:
            if action is Action.PAUSE:
                return self._freeze(name, "pause", "paused")
            if action is Action.RESUME:
                return self._freeze(name, "unpause", "running")
            return {Action.KILL: self._kill, Action.STOP: self._stop, Action.START: self._start}[action](name)

    def _kill(self, name: str) -> dict[str, Any]:
        with self._lock:
            container = self._container(name)
            pid = self._pid(container)
            if container.status == "paused":
                # The engine refuses to signal a frozen container; a SIGKILLed process never runs again anyway.
                container.unpause()
            container.kill()
            container.reload()
            return {
                "name": name,
                "pid": pid,
                "action": "kill",
                "alive": _state(container) != "stopped",
                "container": container.short_id,
            }

    def _stop(self, name: str) -> dict[str, Any]:
        with self._lock:
            container = self._container(name)
            pid = self._pid(container)
            self._graceful_stop(container)
            container.reload()
            return {
                "name": name,
                "pid": pid,
                "action": "stop",
                "exit_code": container.attrs["State"]["ExitCode"],
                "container": container.short_id,
            }

    def _start(self, name: str) -> dict[str, Any]:
        with self._lock:
            container = self._container(name, must_run=False)
            if _state(container) != "stopped":
                return {"name": name, "pid": self._pid(container), "action": "start", "already_running": True}
            container.start()
            took = self._wait_ready(next(n for n in self.nodes() if n.name == name))
            container.reload()
            return {
                "name": name,
                "pid": self._pid(container),
                "action": "start",
                "seconds_to_ready": round(took, 3),
                "container": container.short_id,
            }

    def _freeze(self, name: str, method: str, expected: str) -> dict[str, Any]:
        """Freeze or thaw every process of the container (the cgroup freezer: SIGSTOP without a signal)."""
        with self._lock:
            container = self._container(name)
            getattr(container, method)()
            container.reload()
            if _state(container) != expected:
                raise LabError(f"{name} is {container.status} after {method}, expected {expected}")
            return {
                "name": name,
                "pid": self._pid(container),
                "action": "pause" if method == "pause" else "resume",
                "container": container.short_id,
            }

    def add_service(self, version: str = "v1", meta: dict[str, str] | None = None) -> dict[str, Any]:
        """One more instance on the next address, run from user-1's image and mounts with the project's labels,
        so `docker compose down --remove-orphans` removes it with the stack."""
        with self._lock:
            containers = self.containers()
            template = containers.get(f"{topology.SERVICE_NAME}-1")
            if template is None:
                raise self.not_running()
            index = 1 + max(int(n.rsplit("-", 1)[1]) for n in containers if n.startswith(f"{topology.SERVICE_NAME}-"))
            node = topology.service_node(index, version)
            argv = topology.service_command(index, version, meta).args()
            mounts = [
                docker.types.Mount(m["Destination"], m["Source"], type="bind", read_only=not m["RW"])
                for m in template.attrs["Mounts"]
                if m["Type"] == "bind"
            ]
            labels = {
                "com.docker.compose.project": self.project,
                SERVICE_LABEL: node.name,
                "com.docker.compose.oneoff": "False",
                "com.docker.compose.container-number": "1",
                ADDED: "true",
                VERSION: version,
            }
            container = self.client.containers.run(
                template.attrs["Config"]["Image"],
                argv,
                entrypoint=template.attrs["Config"]["Entrypoint"],
                name=f"{self.project}-{node.name}-1",
                labels=labels,
                network_mode="host",
                init=True,
                mounts=mounts,
                working_dir=template.attrs["Config"]["WorkingDir"],
                detach=True,
            )
            try:
                took = self._wait_ready(node)
            except BaseException:
                container.remove(force=True)
                raise
            container.reload()
            return {
                "name": node.name,
                "pid": self._pid(container),
                "address": node.addr("grpc"),
                "version": version,
                "action": "add_service",
                "seconds_to_ready": round(took, 3),
                "container": container.short_id,
            }

    def log_text(self, name: str) -> str:
        return self._container(name, must_run=False).logs().decode("utf-8", "replace")

    def added_services(self) -> list[str]:
        return sorted(name for name, c in self.containers().items() if c.labels.get(ADDED))

    def remove_service(self, name: str) -> dict[str, Any]:
        with self._lock:
            container = self.containers().get(name)
            if container is None or not container.labels.get(ADDED):
                raise BadInputError(
                    f"invalid argument: name: {name!r} was not added with add_service; "
                    f"added instances: {', '.join(self.added_services()) or 'none'}"
                )
            self._graceful_stop(container)
            container.reload()
            code = container.attrs["State"]["ExitCode"]
            container.remove(v=True, force=True)
            return {"name": name, "action": "remove_service", "exit_code": code, "container": container.short_id}

    def start_together(self, names: list[str]) -> list[str]:
        with self._lock:
            containers = self.containers()
            nodes = {n.name: n for n in self.nodes(containers)}
            for name in names:
                if name not in nodes:
                    self._container(name, must_run=False)
            stopped = [nodes[n] for n in names if _state(containers.get(n)) == "stopped"]
            for node in stopped:
                containers[node.name].start()
            self._wait_group(stopped)
            return list(names)

    # -- what is running -------------------------------------------------------------------------------
    def state_of(self, name: str) -> str:
        return _state(self.containers().get(name))

    def status(self) -> ClusterStatus:
        with self._lock:
            containers = self.containers()
            if not containers:
                raise self.not_running()
            nodes = self.nodes(containers)
            topology_ = describe(
                nodes,
                lambda n: _state(containers.get(n)),
                lambda n: self._pid(containers[n]) if n in containers else None,
                lambda node: (None, f"docker logs {containers[node.name].name}" if node.name in containers else None),
                lambda node: containers[node.name].short_id if node.name in containers else None,
            )
            return ClusterStatus.built(
                topology_,
                backend=self.backend,
                config=ClusterConfig(**self.config.to_dict()),
                state_dir=str(self.base),
                tls=None,
                binaries=self.binaries(containers),
                timings={k: round(v, 3) for k, v in self.timings.items()},
                reaped=[],
                project=self.project,
            )

    def binaries(self, containers: dict[str, Any]) -> dict[str, dict[str, str]]:
        """The image and version each kind runs (consul: hashicorp/consul:1.20.2 or lab/consul:1.8.7); asked once."""
        if self._binaries is None and containers:
            found = {}
            for kind, name in (
                ("consul", "consul-1"),
                ("etcd", "etcd-1"),
                ("prometheus", "prometheus"),
                ("user-service", f"{topology.SERVICE_NAME}-1"),
            ):
                if name not in containers:
                    continue
                tags = containers[name].image.tags
                named = (
                    [t for t in tags if not t.endswith(":ci")] or tags or [containers[name].attrs["Config"]["Image"]]
                )
                found[kind] = {"path": named[0], "version": named[0].rsplit(":", 1)[-1].lstrip("v")}
            self._binaries = found
        return self._binaries or {}
