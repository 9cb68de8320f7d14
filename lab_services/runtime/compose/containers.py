"""Containers the compose runtime starts itself (added instances, client agents, a lesson's own agent or probe):
on the stack's network at a fixed address, labelled as part of the project so `docker compose down` removes them.

`AuxiliaryContainer` gives such a container the same handle a local child process has (`stop`, `kill`, `send`,
`tail`, `alive`), so a drill or a lesson never asks which runtime started it.
"""

from __future__ import annotations

import signal
from typing import Any

import docker
import docker.errors
import docker.types

from lab_services.runtime.compose import topology

SERVICE_LABEL = "com.docker.compose.service"
PROJECT_LABEL = "com.docker.compose.project"
ROLE_LABEL = "lab.role"  # added (an instance add_service started), extra (the shape's agents), auxiliary


def run(
    client: docker.DockerClient,
    project: str,
    name: str,
    image: str,
    command: list[str],
    host: str,
    role: str,
    *,
    entrypoint: list[str] | None = None,
    mounts: list[docker.types.Mount] | None = None,
    environment: dict[str, str] | None = None,
    working_dir: str | None = None,
    labels: dict[str, str] | None = None,
) -> Any:
    """Create and start `name` at `host` on the stack's network, as compose would have (labels, init, DNS name)."""
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
        host_config=api.create_host_config(init=True, mounts=mounts or []),
        networking_config=api.create_networking_config(
            {f"{project}_lab": api.create_endpoint_config(ipv4_address=host, aliases=[name])}
        ),
    )
    api.start(created["Id"])
    return client.containers.get(created["Id"])


def free_host(client: docker.DockerClient, project: str, candidates: range) -> str:
    """The first address in `candidates` (last octets) that no container on the stack's network holds."""
    network = client.networks.get(f"{project}_lab")
    taken = {c["IPv4Address"].split("/")[0] for c in network.attrs.get("Containers", {}).values()}
    for last in candidates:
        if topology.address(last) not in taken:
            return topology.address(last)
    raise RuntimeError(f"no free address left in {topology.address(candidates[0])}-{candidates[-1]}")


class AuxiliaryContainer:
    """A container beside the lab with a child process's handle; removed when stopped."""

    def __init__(self, name: str, container: Any, host: str):
        self.name = name
        self.container = container
        self.host = host

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
            self.container.remove(force=True)
        except docker.errors.NotFound:
            return None
        return code

    def tail(self, lines: int = 40) -> str:
        try:
            return self.container.logs(tail=lines).decode(errors="replace")
        except docker.errors.NotFound:
            return ""
