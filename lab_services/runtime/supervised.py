"""Start, find and drive the supervised local cluster from any process: the CLI, a notebook kernel, a test."""

from __future__ import annotations

import json
import os
import sys
import time
from multiprocessing.connection import Client
from pathlib import Path
from typing import Any

from lab_services.core.paths import state_dir
from lab_services.runtime import processes
from lab_services.runtime.cluster import Cluster, NotReadyError, UnknownProcessError
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.status import ClusterStatus
from lab_services.runtime.supervisor import files

_ERRORS = {
    "UnknownProcessError": UnknownProcessError,
    "ProcessLookupError": ProcessLookupError,
    "ValueError": ValueError,
    "PortInUseError": RuntimeError,
    "MissingBinaryError": RuntimeError,
}


class LabNotRunningError(RuntimeError):
    """No lab cluster is running in this state directory."""


class SupervisedCluster(Cluster):
    """A handle on the cluster a supervisor owns; every call is a request over its socket."""

    backend = "local"

    def __init__(self, base: Path | None = None):
        self.base = base or state_dir()
        self.paths = files(self.base)

    # -- finding and starting --------------------------------------------------------------------------
    def published(self) -> dict[str, Any] | None:
        """The supervisor's state file, if a live supervisor wrote it."""
        try:
            state = json.loads(self.paths["state"].read_text())
        except (OSError, ValueError):
            return None
        return state if processes.is_alive(state.get("pid", 0)) else None

    def running(self) -> bool:
        state = self.published()
        return bool(state and "status" in state)

    def launch(self, config: ClusterConfig, owner_pid: int | None = None, timeout: float = 120.0) -> ClusterStatus:
        """Start a supervisor (and so the cluster) and wait until it is up or says why it is not."""
        config.validate()
        if self.running():
            raise RuntimeError(f"a lab is already running in {self.base}; run `discovery-lab down` first")
        self._wait_for_previous()
        self.paths["state"].unlink(missing_ok=True)
        argv = [sys.executable, "-m", "lab_services.runtime.supervisor", "--config", json.dumps(config.to_dict())]
        if owner_pid:
            argv += ["--owner-pid", str(owner_pid)]
        popen = processes.spawn_detached(argv, log_path=self.paths["log"], env={"LAB_STATE_DIR": str(self.base)})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                state = json.loads(self.paths["state"].read_text())
            except (OSError, ValueError):
                state = None
            if state and state.get("pid") == popen.pid:
                if "error" in state:
                    popen.wait(30)
                    raise RuntimeError(f"the lab did not start: {state['error']}")
                return ClusterStatus.from_dict(state["status"])
            if popen.poll() is not None:
                raise RuntimeError(
                    f"the lab supervisor exited with code {popen.returncode}; see {self.paths['log']}:\n"
                    + "\n".join(self.paths["log"].read_text(errors="replace").splitlines()[-30:])
                )
            time.sleep(0.05)
        raise NotReadyError(f"the lab was not up after {timeout:.0f} s; see {self.paths['log']}")

    def _wait_for_previous(self, timeout: float = 60.0) -> None:
        """A supervisor that is still starting or stopping owns the work directory: let it finish first."""
        deadline = time.monotonic() + timeout
        while (state := self.published()) and "status" not in state:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the previous lab (supervisor pid {state['pid']}) has not finished after "
                    f"{timeout:.0f} s; see {self.paths['log']}"
                )
            time.sleep(0.05)

    # -- the Cluster interface -------------------------------------------------------------------------
    def _request(self, op: str, **args: Any) -> Any:
        state = self.published()
        if not state or "socket" not in state:
            raise LabNotRunningError(f"no lab is running in {self.base}; start one with `discovery-lab up`")
        with Client(state["socket"], family="AF_UNIX", authkey=self.paths["key"].read_bytes()) as conn:
            conn.send({"op": op, "args": args})
            reply = conn.recv()
        if not reply["ok"]:
            raise _ERRORS.get(reply["type"], RuntimeError)(reply["error"])
        return reply["result"]

    def up(self) -> ClusterStatus:
        return self.status() if self.running() else self.launch(ClusterConfig())

    def down(self, timeout: float = 60.0) -> None:
        state = self.published()
        if not state:
            return
        if not state.get("stopping"):
            try:
                self._request("down")
            except (LabNotRunningError, OSError, EOFError):
                os.kill(state["pid"], 15)
        deadline = time.monotonic() + timeout
        while processes.is_alive(state["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if processes.is_alive(state["pid"]):
            os.kill(state["pid"], 9)

    def status(self) -> ClusterStatus:
        return ClusterStatus.from_dict(self._request("status"))

    def kill(self, name: str) -> dict[str, Any]:
        return self._request("kill", name=name)

    def stop(self, name: str) -> dict[str, Any]:
        return self._request("stop", name=name)

    def start(self, name: str) -> dict[str, Any]:
        return self._request("start", name=name)

    def add_service(self, version: str = "v1", meta: dict[str, str] | None = None) -> dict[str, Any]:
        return self._request("add_service", version=version, meta=meta)

    def restore(self) -> list[str]:
        return self._request("restore")

    def pause(self, name: str) -> dict[str, Any]:
        return self._request("pause", name=name)

    def resume(self, name: str) -> dict[str, Any]:
        return self._request("resume", name=name)
