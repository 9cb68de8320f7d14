"""Start and stop a classroom's JupyterHub, and drive it through its REST API (learners, their servers).

The hub is JupyterHub itself (`jupyterhub -f classroom/jupyterhub_config.py`) with its proxy from npm; this module
only checks the settings, starts it in a process group of its own, waits until its API answers, and on `stop` makes
sure that no learner's server or lab outlives it. A hub left running by a crashed launcher is found by its pid file
and stopped by the next start.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import docker
import psutil

from lab_services.classroom import spawning
from lab_services.classroom.settings import HubSettings
from lab_services.core.errors import LabError, NotRunningError
from lab_services.core.paths import REPO_DIR
from lab_services.core.wait import wait_until
from lab_services.runtime import processes

CONFIG = REPO_DIR / "classroom" / "jupyterhub_config.py"
PROXY = REPO_DIR / ".cache" / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"


class HubError(LabError, RuntimeError):
    """The hub did not start, or answered an API call with an error; the message has its words and log's tail."""


class Hub:
    """One classroom's JupyterHub on this machine."""

    def __init__(self, settings: HubSettings):
        self.settings = settings
        self.child: processes.Child | None = None
        self.log_path = settings.data_dir / "jupyterhub.log"

    # -- the hub's process ------------------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> Hub:
        settings = self.settings.validate()
        if not PROXY.exists():
            raise HubError(f"JupyterHub's proxy is missing at {PROXY}: run `make hub-proxy` (needs Node.js and npm)")
        if settings.spawner == "docker":
            _require_image(settings.image)
        self.reap()
        path = settings.save()
        env = {"LAB_HUB_SETTINGS": str(path), "LAB_HUB_PROXY": str(PROXY)}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        # A tracked child of this process (runtime/processes.py): it dies with us, and if we are killed before
        # `stop`, the next start finds its pid file and reaps it.
        self.child = processes.spawn(
            "jupyterhub",
            [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)],
            log_path=self.log_path,
            env=env,
            cwd=settings.data_dir,
            base=settings.data_dir,
        )
        try:
            wait_until(self._answers, timeout, f"JupyterHub to answer at {settings.url}hub/api")
        except Exception as err:
            self.stop()
            raise HubError(f"{err}; last lines of {self.log_path}:\n{self.tail()}") from None
        return self

    @property
    def process(self) -> Any:
        return self.child.popen if self.child is not None else None

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise HubError(f"JupyterHub exited with code {self.process.returncode}:\n{self.tail()}")
        try:
            self.api("GET", "")
        except (OSError, HubError):
            return False
        return True

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM to the hub (it stops every learner's server, and each server's stop hook stops that learner's
        lab or container), then SIGKILL to what is left of its process group; then every learner's process, lab,
        container and network once more, in case a server died before its hook ran."""
        if self.child is not None:
            self.child.stop(timeout=timeout)
            self.child = None
        self._clean_learners()

    def reap(self) -> None:
        """Before a start: a hub whose launcher died (a crash, a killed terminal) and what its learners left."""
        processes.reap_orphans(self.settings.data_dir)
        if processes.live_records(self.settings.data_dir):
            raise HubError(
                f"a hub for {self.settings.data_dir} already runs (pid "
                f"{processes.live_records(self.settings.data_dir)[0].pid}): stop it, or give this one another --data"
            )
        self._clean_learners()

    def _clean_learners(self) -> None:
        for process in self.learner_processes():
            with contextlib.suppress(psutil.Error):
                process.kill()
        for corner in sorted((self.settings.data_dir / "learners").glob("*")):
            spawning.stop_lab(corner)
        if self.settings.spawner == "docker":
            spawning.remove_all(docker.from_env(), self.settings.data_dir)

    def learner_processes(self) -> list[psutil.Process]:
        """Every process started for a learner of this hub (found by the state directory in its environment)."""
        root = str(self.settings.data_dir / "learners")
        found = []
        for process in psutil.process_iter(["pid"]):
            try:
                if process.environ().get("LAB_STATE_DIR", "").startswith(root):
                    found.append(process)
            except (psutil.Error, OSError):
                continue
        return found

    # -- the REST API ----------------------------------------------------------------------------------
    def api(self, method: str, path: str, data: Any = None) -> Any:
        request = urllib.request.Request(
            f"{self.settings.url}hub/api/{path}",
            data=json.dumps(data).encode() if data is not None else (b"" if method in ("POST", "PUT") else None),
            method=method,
            headers={"Authorization": f"token {self.settings.api_token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                body = answer.read()
        except urllib.error.HTTPError as err:
            raise HubError(f"{method} hub/api/{path}: {err.code} {err.read().decode(errors='replace')[:300]}") from None
        return json.loads(body) if body else None

    def add_learner(self, name: str) -> None:
        self.api("POST", f"users/{name}")

    def start_server(self, name: str, timeout: float = 120.0) -> str:
        """Start a learner's server and wait until it is ready; its URL (e.g. http://127.0.0.1:8000/user/alice/)."""
        self.api("POST", f"users/{name}/server")
        try:
            wait_until(
                lambda: self.api("GET", f"users/{name}")["servers"].get("", {}).get("ready"),
                timeout,
                f"{name}'s server",
            )
        except Exception as err:
            raise HubError(f"{err}; last lines of {self.log_path}:\n{self.tail()}") from None
        return f"{self.settings.url}user/{name}/"

    def stop_server(self, name: str, timeout: float = 60.0) -> None:
        self.api("DELETE", f"users/{name}/server")
        wait_until(lambda: not self.api("GET", f"users/{name}")["servers"], timeout, f"{name}'s server to stop")

    def running(self) -> bool:
        try:
            self.api("GET", "")
        except (OSError, HubError):
            return False
        return True

    def require_running(self) -> None:
        if not self.running():
            raise NotRunningError(f"no classroom hub answers at {self.settings.url}: start it with `make classroom`")


def _require_image(image: str) -> None:
    """The learners' image is on this engine: a hub that found out at the first login would fail that learner."""
    try:
        docker.from_env().images.get(image)
    except docker.errors.ImageNotFound:
        raise HubError(
            f"invalid argument: image: {image!r} is not on this Docker engine; build the lab's JupyterLab image with "
            "`docker compose -f compose/docker-compose.yml build jupyter` (or pass --image)"
        ) from None
    except docker.errors.DockerException as err:
        raise HubError(f"the docker spawner needs a Docker engine: {err}") from None
