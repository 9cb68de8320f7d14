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
import signal
import subprocess
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

CONFIG = Path(__file__).with_name("jupyterhub_config.py")
PROXY = REPO_DIR / ".cache" / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"


class HubError(LabError, RuntimeError):
    """The hub did not start, or answered an API call with an error; the message has its words and log's tail."""


class Hub:
    """One classroom's JupyterHub on this machine."""

    def __init__(self, settings: HubSettings):
        self.settings = settings
        self.process: subprocess.Popen | None = None
        self.log_path = settings.data_dir / "jupyterhub.log"

    # -- the hub's process ------------------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> Hub:
        settings = self.settings.validate()
        if not PROXY.exists():
            raise HubError(f"JupyterHub's proxy is missing at {PROXY}: run `make hub-proxy` (needs Node.js and npm)")
        self.reap()
        path = settings.save()
        env = {**os.environ, "LAB_HUB_SETTINGS": str(path), "LAB_HUB_PROXY": str(PROXY)}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)],
                cwd=settings.data_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until(self._answers, timeout, f"JupyterHub to answer at {settings.url}hub/api")
        except Exception as err:
            self.stop()
            raise HubError(f"{err}; last lines of {self.log_path}:\n{self.tail()}") from None
        return self

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
        """SIGTERM to the hub (it stops every learner's server, and each server's stop stops that learner's lab),
        then whatever is left of its process group; then every learner's lab once more, in case a server died
        before its hook ran."""
        pids = self._hub_pids()
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        _, alive = psutil.wait_procs([p for p in map(_process, pids) if p], timeout=timeout)
        for process in alive:
            _signal(process.pid, signal.SIGKILL)
        for process in self.learner_processes():
            _signal(process.pid, signal.SIGKILL)
        for corner in sorted((self.settings.data_dir / "learners").glob("*")):
            spawning.stop_lab(_corner_env(corner))
        if self.settings.spawner == "docker":
            spawning.remove_all(docker.from_env(), self.settings.data_dir)
        (self.settings.data_dir / "jupyterhub.pid").unlink(missing_ok=True)
        self.process = None

    reap = stop  # a start after a crash finds the old hub by its pid file and stops it the same way

    def _hub_pids(self) -> list[int]:
        pids = [self.process.pid] if self.process is not None else []
        pid_file = self.settings.data_dir / "jupyterhub.pid"
        if pid_file.exists() and pid_file.read_text().strip().isdigit():
            pids.append(int(pid_file.read_text()))
        proxy_pid = self.settings.data_dir / "proxy.pid"
        if proxy_pid.exists() and proxy_pid.read_text().strip().isdigit():
            pids.append(int(proxy_pid.read_text()))
        return sorted({pid for pid in pids if _process(pid) and _is_ours(pid, self.settings.data_dir)})

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


def _corner_env(corner: Path) -> dict[str, str]:
    """A learner's corner from its directory alone (enough for `down`: the state directory holds the rest)."""
    return {"LAB_STATE_DIR": str(corner)}


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _is_ours(pid: int, data_dir: Path) -> bool:
    """The pid is a hub or proxy of this classroom (its working directory is the data directory), not a reused pid."""
    try:
        return Path(psutil.Process(pid).cwd()) == data_dir.resolve()
    except (psutil.Error, OSError):
        return False


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
