"""How each learner's server starts and stops on the hub, on either spawner, so that no learner sees, reaps or
reaches another's lab, and a stopped hub leaves no learner's process, container or network behind.

- local: every learner a process of this machine, as the hub's own user (SimpleLocalProcessSpawner), with a corner
  of their own (`core.learner`: state directory, port offset, free-port slice). Their lab stops with their server.
- docker: every learner in a container of the lab's image (DockerSpawner), as uid 1000 under tini, with no Docker
  socket and no capabilities, on a bridge network of their own. The hub's API listens on the gateway of one more
  network, `classroom`, so each container reaches it through its own gateway (an address of this machine), while
  the machine forwards nothing from one learner's network to another's.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import docker

from lab_services.classroom.settings import HubSettings
from lab_services.classroom.singleuser import FIRST_LESSON
from lab_services.core.learner import learner_environment
from lab_services.core.paths import REPO_DIR
from lab_services.runtime import open_cluster

CLASSROOM_LABEL = "lab.classroom"
LEARNER_PREFIX = "discovery-lab-learner-"
# Where the image keeps the package (compose/jupyter/Dockerfile); CI mounts the checkout there instead.
IMAGE_SOURCE = "/src"
HOME = "/home/lab"


def learner_env(spawner: Any, settings: HubSettings) -> dict[str, str]:
    """The learner's state directory, port offset and free-port slice, from the hub's id of the user (unique)."""
    slot = settings.first_slot + spawner.user.id - 1
    return learner_environment(spawner.user.name, slot, settings.data_dir / "learners")


def stop_lab(state_dir: Path) -> None:
    """`down` of the lab in a learner's state directory: their lab's engine outlives a kernel by design, not their
    server. A lab that is not running is left as it is."""
    if state_dir.is_dir():
        open_cluster(state_dir, "local").down()


# What every learner's JupyterLab leaves out: language-server autodetection (the lessons use none, and it runs
# `npm prefix -g` at every server start) and the PyPI extension manager (a learner installs no extensions here).
LEARNER_SERVER_ARGS = ["--LanguageServerManager.autodetect=False", "--LabApp.extension_manager=readonly"]


def configure(c: Any, settings: HubSettings, args: list[str], environment: dict[str, str]) -> None:
    """The spawner part of JupyterHub's configuration `c`; every learner's server gets `args` (the board's server
    extension) besides LEARNER_SERVER_ARGS, and `environment` (where the board is)."""
    args = [*args, *LEARNER_SERVER_ARGS]
    c.Spawner.default_url = f"/lab/tree/{FIRST_LESSON}"
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 90
    if settings.spawner == "docker":
        _docker(c, settings, args, environment)
    else:
        _local(c, settings, args, environment)


def _local(c: Any, settings: HubSettings, args: list[str], environment: dict[str, str]) -> None:
    homes = settings.data_dir / "homes"
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = str(homes / "{username}")
    c.Spawner.cmd = [sys.executable, "-m", "lab_services.classroom.singleuser"]
    # jupyterhub-singleuser refuses root without --allow-root; a real classroom runs the hub as an ordinary user.
    c.Spawner.args = [*args, *(["--allow-root"] if os.geteuid() == 0 else [])]

    def pre_spawn(spawner: Any) -> None:
        (homes / spawner.user.name).mkdir(parents=True, exist_ok=True)
        spawner.environment = {
            **spawner.environment,
            **environment,
            **learner_env(spawner, settings),
            "LAB_BACKEND": "local",
        }

    c.Spawner.pre_spawn_hook = pre_spawn
    c.Spawner.post_stop_hook = lambda spawner: stop_lab(Path(learner_env(spawner, settings)["LAB_STATE_DIR"]))


def network_name(user: str) -> str:
    return f"{LEARNER_PREFIX}{user}"


def ensure_network(client: docker.DockerClient, name: str, subnet: str, data_dir: Path) -> None:
    """A bridge network with `subnet` (its .1 is this machine's address on it), made once."""
    if client.networks.list(names=[name]):
        return
    gateway = subnet.rsplit(".", 1)[0] + ".1"
    client.networks.create(
        name,
        driver="bridge",
        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet, gateway=gateway)]),
        labels={CLASSROOM_LABEL: str(data_dir)},
    )


def remove_all(client: docker.DockerClient, data_dir: Path) -> None:
    """Every learner container and network this classroom made (by its label), e.g. after a crashed hub."""
    label = f"{CLASSROOM_LABEL}={data_dir}"
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
    for network in client.networks.list(filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()


def _docker(c: Any, settings: HubSettings, args: list[str], environment: dict[str, str]) -> None:
    client = docker.from_env()
    net = settings.net_prefix
    ensure_network(client, "discovery-lab-classroom", f"{net}.0.0/24", settings.data_dir)
    c.JupyterHub.hub_ip = f"{net}.0.1"
    c.JupyterHub.spawner_class = "docker"
    c.DockerSpawner.image = settings.image
    c.DockerSpawner.name_template = f"{LEARNER_PREFIX}{{username}}"
    c.DockerSpawner.remove = True
    c.DockerSpawner.use_internal_ip = True
    c.DockerSpawner.notebook_dir = HOME
    c.DockerSpawner.cmd = ["python3", "-m", "lab_services.classroom.singleuser"]
    c.DockerSpawner.args = args
    c.DockerSpawner.environment = {**environment, "LAB_BACKEND": "local", "LAB_STATE_DIR": f"{HOME}/.lab"}
    volumes: dict[str, Any] = {f"{LEARNER_PREFIX}{{username}}": HOME}
    if settings.mount_checkout:
        volumes[str(REPO_DIR)] = {"bind": IMAGE_SOURCE, "mode": "ro"}
    c.DockerSpawner.volumes = volumes
    c.DockerSpawner.extra_create_kwargs = {
        "user": "1000:1000",
        "entrypoint": ["tini", "-g", "--"],
        "labels": {CLASSROOM_LABEL: str(settings.data_dir)},
    }
    c.DockerSpawner.extra_host_config = {"cap_drop": ["ALL"], "security_opt": ["no-new-privileges"]}
    c.DockerSpawner.mem_limit = settings.mem_limit

    def pre_spawn(spawner: Any) -> None:
        slot = settings.first_slot + spawner.user.id
        if slot > 254:
            raise ValueError(f"invalid argument: slot: {slot}; one classroom network prefix holds 254 learners")
        name = network_name(spawner.user.name)
        ensure_network(client, name, f"{net}.{slot}.0/24", settings.data_dir)
        spawner.network_name = name

    def post_stop(spawner: Any) -> None:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.networks.get(network_name(spawner.user.name)).remove()

    c.DockerSpawner.pre_spawn_hook = pre_spawn
    c.DockerSpawner.post_stop_hook = post_stop
