"""Containers the compose runtime starts itself (added instances, client agents, a lesson's own agent or probe):
on the stack's network at a fixed address, labelled as part of the project so `docker compose down` removes them.

`AuxiliaryContainer` gives such a container the same handle a local child process has (`stop`, `kill`, `send`,
`tail`, `alive`), so a drill or a lesson never asks which runtime started it.
"""

from __future__ import annotations

import contextlib
import io
import signal
import tarfile
from typing import Any

import docker
import docker.errors
import docker.types

from lab_services.runtime.compose import topology

SERVICE_LABEL = "com.docker.compose.service"
PROJECT_LABEL = "com.docker.compose.project"
ROLE_LABEL = "lab.role"  # added (an instance add_service started), extra (the shape's agents), auxiliary, net
HOLDER = "net"  # the role of the container that holds an instance's address (see docker-compose.yml's x-holder)


def run(
    client: docker.DockerClient,
    project: str,
    name: str,
    image: str,
    command: list[str],
    host: str | None,
    role: str,
    *,
    network_of: Any = None,
    aliases: list[str] | None = None,
    entrypoint: list[str] | None = None,
    mounts: list[docker.types.Mount] | None = None,
    environment: dict[str, str] | None = None,
    working_dir: str | None = None,
    labels: dict[str, str] | None = None,
    files: dict[str, bytes] | None = None,
    programs: dict[str, bytes] | None = None,
    host_config: dict[str, Any] | None = None,
    healthcheck: dict[str, Any] | None = None,
) -> Any:
    """Create and start `name` at `host` on the stack's network, as compose would have (labels, init, DNS name),
    or in the network of the container `network_of` (its holder), with `files` (path: content) and executable
    `programs` (path: content) written into it before it starts."""
    api = client.api
    all_labels = {
        PROJECT_LABEL: project,
        SERVICE_LABEL: name,
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.container-number": "1",
        ROLE_LABEL: role,
        **(labels or {}),
    }
    created = api.create_container(
        image,
        command,
        name=f"{project}-{name}-1",
        entrypoint=entrypoint,
        environment=environment,
        working_dir=working_dir,
        labels=all_labels,
        healthcheck=healthcheck,
        host_config=api.create_host_config(
            init=True,
            mounts=mounts or [],
            **({"network_mode": f"container:{network_of.id}"} if network_of is not None else {}),
            **(host_config or {}),
        ),
        networking_config=None
        if network_of is not None
        else api.create_networking_config(
            {f"{project}_lab": api.create_endpoint_config(ipv4_address=host, aliases=aliases or [name])}
        ),
    )
    if files:
        api.put_archive(created["Id"], "/", _tar(files))
    if programs:
        api.put_archive(created["Id"], "/", _tar(programs, mode=0o755))
    api.start(created["Id"])
    return client.containers.get(created["Id"])


def run_instance(client: docker.DockerClient, project: str, name: str, image: str, host: str, **kwargs: Any) -> Any:
    """An instance of the user service at `host`, in the network of a holder container that keeps the address when
    the instance's process dies (so a caller is refused, not left hanging). `kwargs` go to `run`."""
    holder = run(
        client,
        project,
        f"{name}-net",
        image,
        ["infinity"],
        host,
        HOLDER,
        entrypoint=["sleep"],
        aliases=[name, f"{name}-net"],
    )
    try:
        return run(
            client, project, name, image, kwargs.pop("command"), None, kwargs.pop("role"), network_of=holder, **kwargs
        )
    except BaseException:
        holder.remove(force=True)
        raise


def remove_with_holder(client: docker.DockerClient, container: Any) -> None:
    """Remove an instance and the holder of its address."""
    mode = container.attrs["HostConfig"].get("NetworkMode") or ""
    container.remove(v=True, force=True)
    if mode.startswith("container:"):
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(mode.split(":", 1)[1]).remove(force=True)


def recreate(
    client: docker.DockerClient,
    old: Any,
    command: list[str],
    files: dict[str, bytes] | None = None,
    labels: dict[str, str] | None = None,
) -> Any:
    """`old` made again with `command` (and `files`): its image, entrypoint, environment, mounts, published ports,
    healthcheck, labels and address kept. The caller has stopped it; its named volumes keep the data."""
    config, host_config = old.attrs["Config"], old.attrs["HostConfig"]
    name, project = old.labels[SERVICE_LABEL], old.labels[PROJECT_LABEL]
    mode = host_config.get("NetworkMode") or ""
    network_of = client.containers.get(mode.split(":", 1)[1]) if mode.startswith("container:") else None
    bindings = {
        port.split("/")[0]: [(b["HostIp"], int(b["HostPort"])) for b in bound]
        for port, bound in (host_config.get("PortBindings") or {}).items()
    }
    host = None
    if network_of is None:
        network = next(iter(old.attrs["NetworkSettings"]["Networks"].values()))
        host = network["IPAMConfig"]["IPv4Address"] if network.get("IPAMConfig") else network["IPAddress"]
    old.remove(force=True)
    return run(
        client,
        project,
        name,
        config["Image"],
        command,
        host,
        old.labels.get(ROLE_LABEL, "file"),
        network_of=network_of,
        entrypoint=config["Entrypoint"],
        mounts=mounts_of(old),
        environment=config.get("Env"),
        working_dir=config.get("WorkingDir") or None,
        labels={**old.labels, **(labels or {})},
        files=files,
        host_config={"port_bindings": {int(k): v[0] for k, v in bindings.items()}} if bindings else None,
        healthcheck=config.get("Healthcheck"),
    )


def mounts_of(template: Any) -> list[docker.types.Mount]:
    """The bind mounts and named volumes of `template`, for a container made in its likeness."""
    return [
        docker.types.Mount(
            m["Destination"], m["Source"] if m["Type"] == "bind" else m["Name"], type=m["Type"], read_only=not m["RW"]
        )
        for m in template.attrs["Mounts"]
        if m["Type"] in ("bind", "volume")
    ]


def _tar(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path, content in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(content), mode
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def free_host(client: docker.DockerClient, project: str, candidates: range, after: str | None = None) -> str:
    """A free address in `candidates` (last octets) that no container on the stack's network holds (`next_free`)."""
    network = client.networks.get(f"{project}_lab")
    taken = {c["IPv4Address"].split("/")[0] for c in network.attrs.get("Containers", {}).values()}
    return next_free([topology.address(last) for last in candidates], taken, after)


def next_free(addresses: list[str], taken: set[str], after: str | None = None) -> str:
    """The first of `addresses` not `taken`, counting from the one past `after` and wrapping round, so an address a
    removed container held is not handed out again at once: a new container on an old address may have a new MAC
    address (Docker 25+ picks them at random), and peers that still cache the old one in their ARP tables would
    reach nothing for up to half a minute."""
    start = addresses.index(after) + 1 if after in addresses else 0
    for address in addresses[start:] + addresses[:start]:
        if address not in taken:
            return address
    raise RuntimeError(f"no free address left in {addresses[0]}-{addresses[-1]}")


class AuxiliaryContainer:
    """A container beside the lab with a child process's handle; removed when stopped."""

    def __init__(self, name: str, container: Any, host: str, client: docker.DockerClient):
        self.name = name
        self.container = container
        self.host = host
        self.client = client

    @property
    def pid(self) -> int | None:
        self.container.reload()
        return self.container.attrs["State"]["Pid"] or None

    def alive(self) -> bool:
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return False
        return self.container.status in ("running", "paused")

    def send(self, sig: signal.Signals) -> None:
        """SIGSTOP and SIGCONT freeze and thaw it (the cgroup freezer, as `pause` does); other signals go to it."""
        if sig == signal.SIGSTOP:
            self.container.pause()
        elif sig == signal.SIGCONT:
            self.container.unpause()
        else:
            self.container.kill(signal=sig.name)

    def kill(self) -> None:
        self.container.reload()
        if self.container.status == "paused":
            self.container.unpause()
        self.container.kill()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, up to `timeout` seconds, then SIGKILL; the container is removed and its exit code returned."""
        try:
            self.container.reload()
            if self.container.status == "paused":
                self.container.unpause()
            if self.container.status == "running":
                self.container.stop(timeout=int(timeout))
            self.container.reload()
            code = self.container.attrs["State"]["ExitCode"]
            remove_with_holder(self.client, self.container)
        except docker.errors.NotFound:
            return None
        return code

    def tail(self, lines: int = 40) -> str:
        try:
            return self.container.logs(tail=lines).decode(errors="replace")
        except docker.errors.NotFound:
            return ""


def read_files(container: Any, directory: str) -> dict[str, bytes]:
    """The files in `directory` of `container` by name ({} when it has none)."""
    try:
        stream, _ = container.get_archive(directory)
    except docker.errors.NotFound:
        return {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        return {
            m.name.rsplit("/", 1)[-1]: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.isfile()
        }
