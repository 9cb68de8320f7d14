"""`ComposeCluster`: the compose runtime's adapter of the Cluster port: the lab as containers of one compose project.

`docker compose` starts and removes the stack as a whole; the Docker SDK drives one container at a time
(kill = SIGKILL, stop = SIGTERM so a service deregisters first, pause = the cgroup freezer). No state
lives in this object that the engine does not also hold: a fresh process (`discovery-lab status` after
`up` returned) finds the stack by its compose project name and the labels on its containers.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types

from lab_services.core.errors import BadInputError, LabError, NotRunningError, UnsupportedError
from lab_services.core.paths import state_dir
from lab_services.runtime import go_programs, readiness
from lab_services.runtime.cluster import (
    Action,
    Auxiliary,
    Cluster,
    NotebookServer,
    NotReadyError,
    UnknownProcessError,
)
from lab_services.runtime.compose import containers, engine, topology
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.nodes import NodeSpec
from lab_services.runtime.status import ClusterStatus, TLSStatus, describe
from lab_services.service.command import ServiceCommand
from lab_services.tls import CertPair, TLSMaterial

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
VERSION = "lab.version"
CONFIG = "lab.config"  # on a container the runtime reshaped: the ClusterConfig fields it was made for, as JSON
PROMETHEUS_CONFIG = str(engine.COMPOSE_DIR / "prometheus" / "prometheus.yml")
# The fields a lesson may ask of the stack beyond its file's shape, which the runtime then adds containers for.
RESHAPED = ("config_store", "consul_clients", "datacenters", "tls")
# An extra agent's data lives as long as its container: in memory, not in an anonymous volume the image would make.
DATA_TMPFS = docker.types.Mount("/consul/data", None, type="tmpfs")
# Where the Go service's static program is copied into the user service's image (any Linux image runs it).
GO_SERVICE_PROGRAM = "/usr/local/bin/lab-go-user-service"


def shape_for(wanted: ClusterConfig) -> ClusterConfig:
    """The stack's shape when it serves `wanted` (the file's, plus the client agents, second datacenter, config store
    or TLS `wanted` asks for); UnsupportedError naming the way round when it cannot."""
    wanted.validate()
    shape = ClusterConfig(**{**SHAPE.to_dict(), **{f: getattr(wanted, f) for f in RESHAPED}})
    if not shape.covers(wanted):
        raise UnsupportedError(
            "compose",
            f"room for {wanted.consul_servers} Consul servers, {wanted.etcd_members} etcd members and "
            f"{wanted.services} instances on {wanted.instance_addresses} addresses (it runs 3, 3 and {SHAPE.services})",
            "use `add_service` for more instances, or the local runtime (unset LAB_BACKEND)",
        )
    return shape


def _deregister(agent: NodeSpec, service_id: str) -> None:
    """Remove `service_id` from `agent`'s own registrations (the catalog follows); one it does not hold is fine."""
    request = urllib.request.Request(
        f"http://{agent.addr('http')}/v1/agent/service/deregister/{service_id}", method="PUT"
    )
    try:
        urllib.request.urlopen(request, timeout=5).close()
    except urllib.error.HTTPError as err:
        if err.code != 404:
            raise


def _state(container: Any) -> str:
    if container is None:
        return "stopped"
    return {"running": "running", "paused": "paused"}.get(container.status, "stopped")


class ComposeCluster(Cluster):
    """The compose project `project` on the local Docker engine; containers outlive this object and its process."""

    backend = "compose"
    tools = ("consul", "etcdctl")

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
        self.ready_timeout = ready_timeout
        self.timings: dict[str, float] = {}
        self._client: docker.DockerClient | None = None
        self._binaries: dict[str, dict[str, str]] | None = None
        self._lock = threading.RLock()
        self._last_auxiliary: str | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = engine.client()
        return self._client

    # -- finding the stack -----------------------------------------------------------------------------
    def containers(self) -> dict[str, Any]:
        """The lab's containers by compose service name, stopped ones too: the servers and instances, not the
        JupyterLab they are driven from, a lesson's auxiliary containers, or the holders of the instances' addresses."""
        found = self.client.containers.list(all=True, filters={"label": f"{containers.PROJECT_LABEL}={self.project}"})
        return {
            c.labels.get(containers.SERVICE_LABEL, c.name): c
            for c in found
            if c.labels.get(containers.SERVICE_LABEL) != topology.JUPYTER
            and c.labels.get(containers.ROLE_LABEL) not in ("auxiliary", containers.HOLDER)
        }

    def running(self) -> bool:
        """True while any of the lab's containers runs. After a reboot or a killed engine they exist but have all
        exited: the lab is not running then, and `up` starts them again."""
        return any(_state(c) != "stopped" for c in self.containers().values())

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
        """Start the stack (or bring back the one a reboot stopped), then shape it for `config`. A compose lab has
        no owner: its containers outlive the kernel that asked (`discovery-lab --backend compose down`)."""
        shape = shape_for(config)
        self._up()
        self._reshape(shape)
        return self.status()

    def ensure(self, wanted: ClusterConfig, owner_pid: int | None = None) -> None:
        """Start the stack unless it runs, and add or remove the client agents, second datacenter or config store
        `wanted` differs in (the instances are made again when where they register or what they follow changes)."""
        self.launch(wanted)

    def current(self, found: dict[str, Any] | None = None) -> ClusterConfig:
        """The shape the containers have now: the file's, or what the runtime last reshaped the instances for."""
        found = self.containers() if found is None else found
        first = found.get(f"{topology.SERVICE_NAME}-1")
        made_for = json.loads(first.labels.get(CONFIG, "{}")) if first is not None else {}
        return ClusterConfig(**{**SHAPE.to_dict(), **made_for})

    def nodes(self, found: dict[str, Any] | None = None) -> list[NodeSpec]:
        """Consul, etcd and Prometheus, the extra agents the lab has, then every instance, by index."""
        found = self.containers() if found is None else found
        services = sorted(
            (int(name.rsplit("-", 1)[1]), c)
            for name, c in found.items()
            if name.startswith(f"{topology.SERVICE_NAME}-")
        )
        shape = self.current(found)
        extras = topology.extra_nodes(shape)
        return [
            *topology.server_nodes(PROMETHEUS_CONFIG),
            *(n for n in extras if n.name in found),
            *(self._instance_node(i, shape, c.labels.get(VERSION, "v1")) for i, c in services),
        ]

    def _instance_node(self, index: int, shape: ClusterConfig, version: str = "v1") -> NodeSpec:
        return topology.service_node(index, version, self._instance_command(index, shape, version))

    def notebook_server(self) -> NotebookServer | None:
        """The stack's own JupyterLab: its unauthenticated `/api` on the published port, the URL with its token that
        it printed when it started, and its container's pid."""
        for container in self.client.containers.list(
            filters={"label": [f"{containers.PROJECT_LABEL}={self.project}", f"{containers.SERVICE_LABEL}=jupyter"]}
        ):
            port = engine.published_ports()["LAB_JUPYTER_PORT"]
            printed = re.findall(r"http://127\.0\.0\.1:\d+/\S*\?token=\w+", self._tail(container, 200))
            return NotebookServer(
                f"http://127.0.0.1:{port}/api",
                printed[-1] if printed else "see `docker logs " + container.name + "`",
                self._pid(container),
            )
        return None

    def support_pids(self) -> dict[str, int | None]:
        """The stack's containers that are not lab processes: JupyterLab, etcd-sd and the instances' address holders,
        by compose service name, each its container's main pid."""
        lab = {n.name for n in self.nodes()}
        every = self.client.containers.list(filters={"label": f"{containers.PROJECT_LABEL}={self.project}"})
        named = {c.labels.get(containers.SERVICE_LABEL, c.name): c for c in every}
        return {name: self._pid(c) for name, c in named.items() if name not in lab}

    # -- the stack as a whole --------------------------------------------------------------------------
    def _compose(self, *args: str, files: list[Path] | None = None, timeout: float = 600.0) -> str:
        argv = [*engine.compose_argv(self.project, files or engine.files_for("official")), *args]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise LabError(
                f"`docker compose {' '.join(args)}` failed (exit {out.returncode}):\n{out.stderr.strip()[-2000:]}"
            )
        return out.stdout

    def _up(self) -> None:
        with self._lock:
            found = self.containers()
            if found and self.running() and all(_state(c) != "stopped" for c in found.values()):
                return
            started = time.monotonic()
            if found:
                # Made before and stopped since (a reboot, a killed engine, `docker compose stop`): start them again.
                self._restart(found)
            else:
                self._create()
            self._wait_all_passing()
            self.timings["all_ready"] = time.monotonic() - started

    def _wait_all_passing(self) -> None:
        """Every instance passing in the catalog at once, the question a learner's first cell asks."""
        nodes = self.nodes()
        agent = next((n for n in nodes if n.name == "consul-1"), None)
        services = [n for n in nodes if n.kind == "service"]
        if agent and services and self.config.registry in ("consul", "both"):
            readiness.wait_all_passing(agent, services, self.ready_timeout)

    def _create(self) -> None:
        """`docker compose up` of the learner's file (with the CI override on a machine with only local images)."""
        if engine.in_stack():
            raise NotRunningError(
                f"the lab's containers are gone; start them from the machine that runs Docker: "
                f"`docker compose -f compose/docker-compose.yml up -d` (or `{self.start_command}`)"
            )
        engine.compose_version()
        images = engine.image_set(self.client)
        files = engine.files_for(images)
        config = engine.compose_config(files, self.project)
        engine.missing_images(self.client, config)
        to_pull = engine.images_to_pull(self.client, config)
        engine.check_network_free(self.client, self.project)
        engine.check_published_ports()
        try:
            try:
                self._compose("up", "--detach", "--remove-orphans", files=files)
            except LabError as err:
                raise engine.explain_up_failure(err, to_pull, images) from None
            # The same readiness as the local runtime (a raft leader, etcd healthy, Prometheus ready, each
            # service passing in Consul and listed in etcd), asked of the servers, not of docker's healthchecks.
            self._wait_group(self.nodes())
            self._check_running()
        except BaseException:
            self.down()
            raise

    def _restart(self, found: dict[str, Any]) -> None:
        """Start every stopped container of the lab: the servers together (a raft needs its peers), then the rest."""
        nodes = self.nodes(found)
        servers = [n.name for n in nodes if n.kind != "service" and n.name in found]
        self.start_together(servers)
        for holder in self.client.containers.list(
            all=True, filters={"label": [f"{containers.PROJECT_LABEL}={self.project}", f"{containers.ROLE_LABEL}=net"]}
        ):
            if _state(holder) == "stopped":
                holder.start()
        shape = self.current(found)
        for name, container in found.items():
            if name in servers or _state(container) != "stopped":
                continue
            if name.startswith(f"{topology.SERVICE_NAME}-"):
                # Stopped with the whole stack, it could not deregister, and its agent restored it as it last was,
                # passing: remove that, or it would look ready before it has registered (and been checked) again.
                _deregister(topology.registration_agent(int(name.rsplit("-", 1)[1]), shape), name)
            else:
                container.start()
        self.start_together([n.name for n in nodes if n.kind == "service"])
        self._check_running()
        if not engine.in_stack():
            # The stack's JupyterLab too, which `containers()` leaves out: the learner's way back in.
            for container in self.client.containers.list(
                all=True, filters={"label": f"{containers.SERVICE_LABEL}={topology.JUPYTER}"}
            ):
                if container.labels.get(containers.PROJECT_LABEL) == self.project and _state(container) == "stopped":
                    container.start()

    def _check_running(self) -> None:
        """Every container of the stack runs, helpers without a readiness check of their own (etcd-sd) too."""
        for name, container in self.containers().items():
            container.reload()
            if container.status != "running":
                raise NotReadyError(
                    f"{name} is {container.status} (exit code {container.attrs['State']['ExitCode']}); "
                    f"last lines of `docker logs {container.name}`:\n{self._tail(container)}"
                )

    def down(self, volumes: bool = False) -> None:
        """Services first (SIGTERM: they deregister while Consul and etcd still answer), then the whole project.

        The servers' data (named volumes) stays unless `volumes`; containers and the network never do. From inside
        the stack's JupyterLab, the lab's containers go and JupyterLab stays (the compose CLI is on the host).
        """
        with self._lock:
            found = self.containers()
            services = [c for name, c in found.items() if name.startswith(f"{topology.SERVICE_NAME}-")]
            with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
                list(pool.map(self._graceful_stop, services))
            if engine.in_stack():
                for container in self.containers().values():
                    container.remove(v=True, force=True)
                return
            self._compose("down", "--remove-orphans", "--timeout", "2", *(["--volumes"] if volumes else []))
            for container in self.client.containers.list(
                all=True, filters={"label": f"{containers.PROJECT_LABEL}={self.project}"}
            ):
                container.remove(v=True, force=True)
            # A container compose did not know of (a lesson's own) kept the network in use until just now.
            for network in self.client.networks.list(names=[f"{self.project}_lab"]):
                network.remove()

    @staticmethod
    def _graceful_stop(container: Any) -> None:
        if container.status == "paused":
            container.unpause()
        if container.status in ("running", "paused"):
            container.stop(timeout=10)

    # -- the shape beyond the file's ---------------------------------------------------------------------
    def _reshape(self, shape: ClusterConfig) -> None:
        """Add or remove client agents and the second datacenter, and make the instances again when where they
        register or which config store they follow changes; everything else stays as it runs."""
        with self._lock:
            found = self.containers()
            now = self.current(found)
            if all(getattr(now, f) == getattr(shape, f) for f in RESHAPED):
                return
            wanted = {n.name: n for n in topology.extra_nodes(shape)}
            for name, container in found.items():
                role = container.labels.get(containers.ROLE_LABEL)
                if role == "added":
                    self.remove_service(name)  # made for the old shape: registered elsewhere, or not serving TLS
                elif role == "extra" and name not in wanted:
                    # SIGTERM first: a client agent then leaves, and the catalog drops its node with the instances
                    # registered there; killed, they would stay listed as passing until gossip notices.
                    self._graceful_stop(container)
                    container.remove(force=True)
            template = found["consul-1"]
            added = []
            for name, node in wanted.items():
                if name not in found:
                    containers.run(
                        self.client,
                        self.project,
                        name,
                        template.attrs["Config"]["Image"],
                        node.argv,
                        node.host,
                        "extra",
                        entrypoint=template.attrs["Config"]["Entrypoint"],
                        mounts=[DATA_TMPFS],
                    )
                    added.append(node)
            self._wait_group(added)
            files = self._new_tls_files(shape) if shape.tls != "off" else {}
            if now.tls != shape.tls:
                self._retls_consul(found["consul-1"], shape.tls, files)
            made_for = {CONFIG: json.dumps({f: getattr(shape, f) for f in RESHAPED})}
            for index in range(1, topology.INSTANCES + 1):
                old = found[f"{topology.SERVICE_NAME}-{index}"]
                self._graceful_stop(old)
                was, will = (topology.registration_agent(index, s) for s in (now, shape))
                if was.name != will.name and (was.kind == "consul" or was.name in wanted):
                    # Moving to another agent: a stop slower than its grace period leaves the old registration,
                    # whose check then passes against the new container at the same address (listed twice).
                    _deregister(was, f"{topology.SERVICE_NAME}-{index}")
                argv = self._instance_command(index, shape).args()
                self._wait_made(containers.recreate(self.client, old, argv, files, made_for), index, shape)
            self._wait_all_passing()

    def _instance_command(
        self, index: int, shape: ClusterConfig, version: str = "v1", meta: dict[str, str] | None = None
    ) -> ServiceCommand:
        """Instance `index` registered with its agent, following the config store, serving TLS, as `shape` says."""
        return topology.service_command(
            index,
            version,
            meta,
            options=[*topology.config_flags(shape), *topology.tls_flags(shape)],
            consul=topology.registration_agent(index, shape).addr("http"),
        )

    def _wait_made(self, container: Any, index: int, shape: ClusterConfig, version: str = "v1") -> Any:
        try:
            self._wait_ready(self._instance_node(index, shape, version))
        except BaseException:
            containers.remove_with_holder(self.client, container)
            raise
        return container

    # -- TLS ---------------------------------------------------------------------------------------------------
    @property
    def tls_dir(self) -> Path:
        return self.base / "compose-tls"

    def _new_tls_files(self, shape: ClusterConfig) -> dict[str, bytes]:
        """A new CA and certificates for a TLS lab, kept in this lab's state directory, as the files to write into
        the containers."""
        material = TLSMaterial.create(self.tls_dir, hosts=topology.tls_hosts())
        return self._as_files(material.ca.cert_pem, material.server, material.client)

    @staticmethod
    def _as_files(ca: bytes, server: CertPair, client: CertPair) -> dict[str, bytes]:
        return {
            f"{topology.TLS_DIR}/ca.pem": ca,
            f"{topology.TLS_DIR}/server.pem": server.cert_pem,
            f"{topology.TLS_DIR}/server-key.pem": server.key_pem,
            f"{topology.TLS_DIR}/client.pem": client.cert_pem,
            f"{topology.TLS_DIR}/client-key.pem": client.key_pem,
        }

    def _current_tls_files(self, found: dict[str, Any]) -> dict[str, bytes]:
        """The certificates the running instances have, read back from user-1 (a process other than the one that
        made them finds them there) and kept in this lab's state directory too."""
        first = found.get(f"{topology.SERVICE_NAME}-1")
        if first is None or self.current(found).tls == "off":
            return {}
        read = containers.read_files(first, topology.TLS_DIR)
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        for name, content in read.items():
            (self.tls_dir / name).write_bytes(content)
        return {f"{topology.TLS_DIR}/{name}": content for name, content in read.items()}

    def _retls_consul(self, consul: Any, tls: str, files: dict[str, bytes]) -> None:
        """consul-1 again with (or without) the settings its gRPC checks of TLS instances need; its data stays."""
        every = set(topology.consul_tls_flags("mtls"))
        command = [a for a in consul.attrs["Config"]["Cmd"] if a not in every] + topology.consul_tls_flags(tls)
        consul.stop(timeout=5)
        containers.recreate(self.client, consul, command, files)
        self._wait_group([n for n in topology.consul_nodes() if n.name == "consul-1"])

    def _tls_status(self, found: dict[str, Any], mode: str) -> TLSStatus | None:
        if mode == "off":
            return None
        if not (self.tls_dir / "client-key.pem").exists():
            self._current_tls_files(found)
        return TLSStatus(
            mode=mode,
            ca=str(self.tls_dir / "ca.pem"),
            client_cert=str(self.tls_dir / "client.pem"),
            client_key=str(self.tls_dir / "client-key.pem"),
        )

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
        found = self.containers()
        if name not in found:
            raise UnknownProcessError(
                f"no lab process named {name!r}; the lab has: "
                f"{', '.join(n.name for n in self.nodes(found)) if found else 'nothing (run up first)'}"
            )
        container = found[name]
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
        """One more instance at the next address, from user-1's image and mounts, registered and configured as the
        lab's instances are, labelled into the project so `docker compose down` removes it with the stack."""
        with self._lock:
            found = self.containers()
            template = found.get(f"{topology.SERVICE_NAME}-1")
            if template is None:
                raise self.not_running()
            shape = self.current(found)
            index = 1 + max(int(n.rsplit("-", 1)[1]) for n in found if n.startswith(f"{topology.SERVICE_NAME}-"))
            command = self._instance_command(index, shape, version, meta)
            started = time.monotonic()
            container = containers.run_instance(
                self.client,
                self.project,
                command.instance_id,
                template.attrs["Config"]["Image"],
                command.host,
                command=command.args(),
                role="added",
                entrypoint=template.attrs["Config"]["Entrypoint"],
                mounts=containers.mounts_of(template),
                environment=_environment(template),
                working_dir=template.attrs["Config"]["WorkingDir"],
                labels={VERSION: version},
                files=self._current_tls_files(found),
            )
            self._wait_made(container, index, shape, version)
            return {
                "name": command.instance_id,
                "pid": self._pid(container),
                "address": f"{command.host}:{command.port}",
                "version": version,
                "action": "add_service",
                "seconds_to_ready": round(time.monotonic() - started, 3),
                "container": container.short_id,
            }

    # -- containers beside the lab -----------------------------------------------------------------------
    def auxiliary_host(self, index: int | None = None) -> str:
        """A free address on the stack's network for the next auxiliary container (always one of its own), taken in
        turn: never the one the last container handed out here just held."""
        self._last_auxiliary = containers.free_host(
            self.client, self.project, topology.AUXILIARY_HOSTS, after=self._last_auxiliary
        )
        return self._last_auxiliary

    def start_auxiliary(
        self, kind: Auxiliary, name: str, args: list[str], host: str | None = None
    ) -> containers.AuxiliaryContainer:
        """A container beside the lab at `host` on its network: the user service's image for a SERVICE (and for the
        Go service, whose static program this kernel builds and copies in), the Consul servers' own image (and so
        their version) for a CONSUL_AGENT. Removed by `.stop()` or the stack's `down`."""
        kind = Auxiliary(kind)
        if not name or not name.replace("-", "").isalnum():
            raise BadInputError(f"invalid argument: name: {name!r}; give a plain name (letters, digits, '-')")
        found = self.containers()
        template = found.get("consul-1" if kind is Auxiliary.CONSUL_AGENT else f"{topology.SERVICE_NAME}-1")
        if template is None:
            raise self.not_running()
        host = host or self.auxiliary_host()
        for earlier in self.client.containers.list(all=True, filters={"name": f"^{self.project}-{name}-1$"}):
            containers.remove_with_holder(self.client, earlier)  # the same one started again (a probe after its kill)
        common = {
            "entrypoint": template.attrs["Config"]["Entrypoint"],
            "environment": _environment(template),
            "working_dir": template.attrs["Config"]["WorkingDir"],
        }
        image = template.attrs["Config"]["Image"]
        if kind is Auxiliary.CONSUL_AGENT:
            container = containers.run(
                self.client,
                self.project,
                name,
                image,
                ["agent", *args],
                host,
                "auxiliary",
                mounts=[DATA_TMPFS],
                **common,
            )
        else:
            # An instance: its address outlives its process, as the lab's own instances' do.
            if kind is Auxiliary.GO_SERVICE:
                program = go_programs.program("user-service")
                command, extra = args, {"programs": {GO_SERVICE_PROGRAM: program.read_bytes()}}
                common["entrypoint"] = [GO_SERVICE_PROGRAM]
            else:
                command, extra = ["-m", "lab_services.service", *args], {"mounts": containers.mounts_of(template)}
            container = containers.run_instance(
                self.client,
                self.project,
                name,
                image,
                host,
                command=command,
                role="auxiliary",
                **extra,
                **common,
            )
        return containers.AuxiliaryContainer(name, container, host, self.client)

    def log_text(self, name: str) -> str:
        return self._container(name, must_run=False).logs().decode("utf-8", "replace")

    def added_services(self) -> list[str]:
        return sorted(n for n, c in self.containers().items() if c.labels.get(containers.ROLE_LABEL) == "added")

    def remove_service(self, name: str) -> dict[str, Any]:
        with self._lock:
            container = self.containers().get(name)
            if container is None or container.labels.get(containers.ROLE_LABEL) != "added":
                raise BadInputError(
                    f"invalid argument: name: {name!r} was not added with add_service; "
                    f"added instances: {', '.join(self.added_services()) or 'none'}"
                )
            self._graceful_stop(container)
            container.reload()
            code = container.attrs["State"]["ExitCode"]
            containers.remove_with_holder(self.client, container)
            return {"name": name, "action": "remove_service", "exit_code": code, "container": container.short_id}

    def start_together(self, names: list[str]) -> list[str]:
        with self._lock:
            found = self.containers()
            nodes = {n.name: n for n in self.nodes(found)}
            for name in names:
                if name not in nodes:
                    self._container(name, must_run=False)
            stopped = [nodes[n] for n in names if _state(found.get(n)) == "stopped"]
            for node in stopped:
                found[node.name].start()
            self._wait_group(stopped)
            return list(names)

    # -- what is running -------------------------------------------------------------------------------
    def state_of(self, name: str) -> str:
        return _state(self.containers().get(name))

    def status(self) -> ClusterStatus:
        with self._lock:
            found = self.containers()
            if not found:
                raise self.not_running()
            nodes = self.nodes(found)
            topology_ = describe(
                nodes,
                lambda n: _state(found.get(n)),
                lambda n: self._pid(found[n]) if n in found else None,
                lambda node: (None, f"docker logs {found[node.name].name}" if node.name in found else None),
                lambda node: found[node.name].short_id if node.name in found else None,
            )
            return ClusterStatus.built(
                topology_,
                backend=self.backend,
                config=self.current(found),
                state_dir=str(self.base),
                tls=self._tls_status(found, self.current(found).tls),
                binaries=self.binaries(found),
                timings={k: round(v, 3) for k, v in self.timings.items()},
                reaped=[],
                project=self.project,
            )

    def binaries(self, found: dict[str, Any]) -> dict[str, dict[str, str]]:
        """The image and version each kind runs (consul: hashicorp/consul:1.20.2 or lab/consul:1.8.7); asked once."""
        if self._binaries is None and found:
            kinds = {}
            for kind, name in (
                ("consul", "consul-1"),
                ("etcd", "etcd-1"),
                ("prometheus", "prometheus"),
                ("user-service", f"{topology.SERVICE_NAME}-1"),
            ):
                if name not in found:
                    continue
                tags = found[name].image.tags
                named = [t for t in tags if not t.endswith(":ci")] or tags or [found[name].attrs["Config"]["Image"]]
                kinds[kind] = {"path": named[0], "version": named[0].rsplit(":", 1)[-1].lstrip("v")}
            self._binaries = kinds
        return self._binaries or {}


def _environment(template: Any) -> list[str]:
    """What compose set for `template` (LAB_NET_PREFIX among it), without what its image already sets."""
    image_env = set(template.image.attrs["Config"].get("Env") or [])
    return [e for e in template.attrs["Config"]["Env"] or [] if e not in image_env]
