"""The Docker engine and the compose CLI as the compose runtime uses them, with an error that names the fix for each
way they fail."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import docker
import docker.errors

from lab_services.core.errors import BadInputError, LabError, UnreachableError
from lab_services.core.paths import REPO_DIR

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


def compose_env(data_dir: Path) -> dict[str, str]:
    """What docker-compose.yml interpolates: where the Consul servers keep their data, and as whom they run
    (the caller, so the lab's own code can read what they write there)."""
    return {**os.environ, "LAB_COMPOSE_DATA": str(data_dir), "LAB_UID": str(os.getuid()), "LAB_GID": str(os.getgid())}


def compose_config(files: list[Path], project: str = "config", env: dict[str, str] | None = None) -> dict[str, Any]:
    """The merged, validated configuration (`docker compose config --format json`)."""
    out = subprocess.run(
        [*compose_argv(project, files), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
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
