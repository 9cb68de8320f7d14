"""The Docker engine and the compose CLI as the compose runtime uses them, with an error that names the fix for each
way they fail."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import docker
import docker.errors

from lab_services.core.errors import BadInputError, LabError, UnreachableError
from lab_services.core.network import lab_subnet, stack_setting
from lab_services.core.paths import REPO_DIR
from lab_services.core.ports import PortInUseError, holder, is_free

COMPOSE_DIR = REPO_DIR / "compose"
LEARNER_FILE = COMPOSE_DIR / "docker-compose.yml"
CI_OVERRIDE = COMPOSE_DIR / "ci.override.yml"
# Engine 20.10 speaks API 1.41: compose v2 and the `init`, healthcheck and host-network features need no more.
MIN_API = (1, 41)
IMAGE_SETS = ("auto", "official", "ci")


class DockerUnavailableError(UnreachableError):
    """No usable Docker engine or compose CLI; the message says what to install, start or change."""


class ImageMissingError(LabError, RuntimeError):
    """An image the stack needs is not on the engine and the file forbids pulling it."""


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def explain_connection_error(err: Exception) -> str:
    """Turn the SDK's connection failure into what to do about it (the SDK's own text names neither)."""
    text = str(err)
    where = engine_address()
    if "Permission denied" in text or isinstance(getattr(err, "__context__", None), PermissionError):
        return (
            f"permission denied on the Docker socket ({where}): add your user to the docker group "
            "(`sudo usermod -aG docker $USER`, then log in again) or run as root; or unset LAB_BACKEND "
            "to use the local runtime"
        )
    return (
        f"no Docker engine answers at {where}: start it (`sudo make compose-engine` on Debian, Docker "
        "Desktop elsewhere), point DOCKER_HOST at a running one, or unset LAB_BACKEND to use the local "
        f"runtime ({text.splitlines()[0] if text else type(err).__name__})"
    )


def check_api_version(version: dict[str, Any]) -> None:
    """Refuse engines older than 20.10 (API 1.41) with the versions found and the fix."""
    api = tuple(int(x) for x in str(version.get("ApiVersion", "0.0")).split(".")[:2])
    if api < MIN_API:
        raise DockerUnavailableError(
            f"the Docker engine at {engine_address()} is {version.get('Version', '?')} "
            f"(API {'.'.join(map(str, api))}), "
            f"too old for the compose runtime: it needs Docker 20.10 or newer (API {'.'.join(map(str, MIN_API))}); "
            "upgrade the engine"
        )


def client() -> docker.DockerClient:
    """A connected client, or DockerUnavailableError naming the fix (no engine, no permission, too old)."""
    try:
        found = docker.from_env(timeout=30)
        version = found.version()
    except docker.errors.DockerException as err:
        raise DockerUnavailableError(explain_connection_error(err)) from None
    check_api_version(version)
    return found


def docker_cli() -> str:
    """The `docker` command (LAB_DOCKER_CLI overrides PATH)."""
    name = os.environ.get("LAB_DOCKER_CLI") or "docker"
    found = shutil.which(name)
    if not found:
        raise DockerUnavailableError(
            f"no `{name}` command on PATH: install the Docker CLI with the compose v2 plugin "
            "(`sudo make compose-engine` on Debian) or set LAB_DOCKER_CLI"
        )
    return found


def compose_version() -> str:
    """The compose v2 plugin's version, or DockerUnavailableError when `docker compose` is not there."""
    out = subprocess.run([docker_cli(), "compose", "version", "--short"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0 or not out.stdout.strip():
        raise DockerUnavailableError(
            "docker compose v2 is missing (`docker compose version` failed): install the compose plugin "
            "(Debian: the docker-compose package, see `make compose-engine`; Docker Desktop includes it); "
            f"the old docker-compose v1 will not do ({(out.stderr or out.stdout).strip()[:200]})"
        )
    return out.stdout.strip().lstrip("v")


def image_set(client: docker.DockerClient) -> str:
    """Which images to run: LAB_COMPOSE_IMAGES=official|ci, or by default the official ones unless only
    the locally built `lab/*:ci` images are on this engine (a machine with no registry, such as CI)."""
    chosen = (os.environ.get("LAB_COMPOSE_IMAGES") or "auto").strip().lower()
    if chosen not in IMAGE_SETS:
        raise BadInputError(f"invalid argument: LAB_COMPOSE_IMAGES: {chosen!r}; use one of {', '.join(IMAGE_SETS)}")
    if chosen != "auto":
        return chosen

    def present(name: str) -> bool:
        try:
            client.images.get(name)
            return True
        except docker.errors.ImageNotFound:
            return False

    official = [s["image"] for s in compose_config([LEARNER_FILE])["services"].values() if "build" not in s]
    if all(present(name) for name in official) or not present("lab/consul:ci"):
        return "official"
    return "ci"


def files_for(images: str) -> list[Path]:
    return [LEARNER_FILE] + ([CI_OVERRIDE] if images == "ci" else [])


def compose_argv(project: str, files: list[Path]) -> list[str]:
    argv = [docker_cli(), "compose", "-p", project]
    for path in files:
        argv += ["-f", str(path)]
    return argv


def in_stack() -> bool:
    """True in the stack's own JupyterLab container, which drives the lab through the Docker socket but has neither
    the compose CLI nor the compose files' host paths: there the runtime uses the Docker API alone."""
    return bool(os.environ.get("LAB_KERNEL_HOST")) and Path("/.dockerenv").exists()


# What the stack publishes on 127.0.0.1 (and nothing else): the setting in compose/.env, and what is there.
PUBLISHED = {"LAB_JUPYTER_PORT": "JupyterLab", "LAB_CONSUL_PORT": "Consul's UI", "LAB_PROMETHEUS_PORT": "Prometheus"}


def published_ports() -> dict[str, int]:
    """The ports the stack publishes on 127.0.0.1, by setting, as compose/.env (or the environment) sets them."""
    ports = {}
    for name in PUBLISHED:
        value = stack_setting(name)
        if not value.isdigit() or not 1 <= int(value) <= 65535:
            raise BadInputError(f"invalid argument: {name}: {value!r}; set a port (1-65535) in compose/.env")
        ports[name] = int(value)
    return ports


def check_published_ports() -> None:
    """Every port the stack publishes must be free on 127.0.0.1; say who holds one and how to move it."""
    for name, port in published_ports().items():
        if not is_free("127.0.0.1", port):
            raise PortInUseError(
                f"port {port} on 127.0.0.1 ({PUBLISHED[name]}) is in use by {holder(port, '127.0.0.1')}: stop that "
                f"program, or publish the lab elsewhere with {name}=<another port> in compose/.env"
            )


def check_network_free(client: docker.DockerClient, project: str) -> None:
    """The stack's subnet must not be another Docker network's or one of this machine's own: name it and the fix."""
    subnet = lab_subnet()
    own = [n.id[:12] for n in client.networks.list(names=[f"{project}_lab"])]
    for network in client.networks.list():
        if network.name == f"{project}_lab":
            continue
        for pool in (network.attrs.get("IPAM") or {}).get("Config") or []:
            if pool.get("Subnet") and ipaddress.ip_network(pool["Subnet"], strict=False).overlaps(subnet):
                raise BadInputError(
                    f"invalid argument: LAB_NET_PREFIX: the lab's network {subnet} overlaps Docker network "
                    f"{network.name!r} ({pool['Subnet']}); set another private prefix in compose/.env "
                    f"(LAB_NET_PREFIX=10.99.42, say) or remove that network"
                )
    import psutil

    for interface, addresses in psutil.net_if_addrs().items():
        if interface.removeprefix("br-") in own:
            continue  # the bridge of the lab's own network, left from an earlier `up`: compose reuses it
        for found in addresses:
            if found.family == socket.AF_INET and ipaddress.ip_address(found.address) in subnet:
                raise BadInputError(
                    f"invalid argument: LAB_NET_PREFIX: the lab's network {subnet} is already this machine's "
                    f"({interface} has {found.address}); set another private prefix in compose/.env "
                    f"(LAB_NET_PREFIX=10.99.42, say)"
                )


def images_to_pull(client: docker.DockerClient, config: dict[str, Any]) -> list[str]:
    """'image (service)' for each image `up` would have to pull: not on this engine, and not built here."""
    absent = []
    for name, svc in sorted(config["services"].items()):
        if "build" in svc or svc.get("pull_policy") == "build":
            continue
        try:
            client.images.get(svc["image"])
        except docker.errors.ImageNotFound:
            absent.append(f"{svc['image']} ({name})")
    return absent


def explain_up_failure(err: LabError, to_pull: list[str], images: str) -> LabError:
    """`docker compose up` failed: name the images it could not pull (and that nothing else changed), or the setting
    to change when an address or port is taken."""
    text = str(err)
    if "pull" in text.lower() or 'Get "https://' in text:
        return ImageMissingError(
            f"could not pull {', '.join(to_pull) or 'an image'}: nothing was started and the rest of the lab is "
            f"untouched. Check the network (or a registry mirror) and run `up` again"
            + (
                "; with no registry in reach, build local images with `make compose-images` and set "
                "LAB_COMPOSE_IMAGES=ci"
                if images == "official"
                else ""
            )
            + f"\n{text}"
        )
    if "Pool overlaps" in text or "address already in use" in text.lower():
        return LabError(f"{text}\nChange LAB_NET_PREFIX or the LAB_*_PORT settings in compose/.env and run `up` again.")
    return err


def compose_config(files: list[Path], project: str = "config") -> dict[str, Any]:
    """The merged, validated configuration (`docker compose config --format json`)."""
    out = subprocess.run(
        [*compose_argv(project, files), "config", "--format", "json"], capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        raise LabError(f"docker compose rejected {', '.join(p.name for p in files)}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def missing_images(client: docker.DockerClient, config: dict[str, Any]) -> None:
    """Fail before `up` when a service may not pull (pull_policy: never) and its image is not here."""
    missing = []
    for name, svc in sorted(config["services"].items()):
        if svc.get("pull_policy") != "never":
            continue
        try:
            client.images.get(svc["image"])
        except docker.errors.ImageNotFound:
            missing.append(f"{svc['image']} ({name})")
    if missing:
        raise ImageMissingError(
            f"image {', '.join(missing)} is not on this engine and pulling is disabled (pull_policy: never): build the "
            "local images with `make compose-images` (compose/images.sh), or set LAB_COMPOSE_IMAGES=official to "
            "use the official images"
        )
