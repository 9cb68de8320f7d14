"""`LocalCluster`: the local runtime's adapter of the Cluster port, usable from any process (the CLI, a kernel, a test).

The lab itself runs in a local engine process (`engine.py`); every call here starts one, finds it through the
state directory, or sends it a request over its socket.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from multiprocessing.connection import Client
from pathlib import Path
from typing import Any

from lab_services.core.errors import LabError, NotRunningError, UnreachableError
from lab_services.core.paths import state_dir
from lab_services.runtime import processes
from lab_services.runtime.cluster import Action, Cluster, NotReadyError, UnknownProcessError
from lab_services.runtime.config import ClusterConfig, union
from lab_services.runtime.local.engine import files
from lab_services.runtime.status import ClusterStatus


def _error(reply: dict[str, Any]) -> LabError:
    """The engine's failure as the lab error it raised there (same class and message), or a LabError."""
    cls: type = LabError
    module = reply.get("module", "")
    if module.startswith("lab_services."):
        found = getattr(importlib.import_module(module), reply["type"], None)
        if isinstance(found, type) and issubclass(found, LabError):
            cls = found
    err = cls.__new__(cls)
    err.args = (reply["error"],)
    return err


class LocalCluster(Cluster):
    """A handle on the lab the local engine of state directory `base` runs; every call is a request to it."""

    backend = "local"

    def __init__(self, base: Path | None = None):
        self.base = base or state_dir()
        self.paths = files(self.base)

    @property
    def location(self) -> str:
        return str(self.base)

    @property
    def start_command(self) -> str:
        return "discovery-lab up"

    # -- finding and starting --------------------------------------------------------------------------
    def published(self) -> dict[str, Any] | None:
        """The engine's state file, if a live engine wrote it."""
        try:
            state = json.loads(self.paths["state"].read_text())
        except (OSError, ValueError):
            return None
        return state if processes.is_alive(state.get("pid", 0)) else None

    def running(self) -> bool:
        state = self.published()
        return bool(state and "status" in state)

    def support_pids(self) -> dict[str, int | None]:
        """The engine process that runs the lab (its servers and instances are its children)."""
        state = self.published()
        return {"engine": state["pid"]} if state else {}

    def launch(self, config: ClusterConfig, owner_pid: int | None = None, timeout: float = 120.0) -> ClusterStatus:
        """Start an engine (and so the cluster) and wait until it is up or says why it is not."""
        config.validate()
        if self.running():
            raise LabError(f"a lab is already running in {self.base}; run `discovery-lab down` first")
        self._wait_for_previous()
        self.paths["state"].unlink(missing_ok=True)
        argv = [sys.executable, "-m", "lab_services.runtime.local.engine", "--config", json.dumps(config.to_dict())]
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
                    raise _error({**state, "error": f"the lab did not start: {state['error']}"})
                if "status" in state:
                    return ClusterStatus.from_dict(state["status"])
            if popen.poll() is not None:
                raise NotReadyError(
                    f"the lab's engine exited with code {popen.returncode}; see {self.paths['log']}:\n"
                    + "\n".join(self.paths["log"].read_text(errors="replace").splitlines()[-30:])
                )
            time.sleep(0.05)
        raise NotReadyError(f"the lab was not up after {timeout:.0f} s; see {self.paths['log']}")

    def ensure(self, wanted: ClusterConfig, owner_pid: int | None = None) -> None:
        """A lab started from a notebook is owned by that kernel: when the kernel dies, the lab goes with it. A lab
        started with `discovery-lab up` (as `make lab` does) has no owner and runs until `down`. A running lab too
        small for `wanted` is restarted in the smallest shape that serves both, keeping its owner. A lab still
        starting (a classroom server starts lesson 00's as the learner arrives) is waited for, then judged.

        Two callers at once (that server's start and the learner's first cell) take turns on a lock in the state
        directory: without it both could find no lab and start two engines on the same ports."""
        with self._launch_lock(timeout=180.0):
            self._ensure(wanted, owner_pid)

    @contextlib.contextmanager
    def _launch_lock(self, timeout: float) -> Iterator[None]:
        self.base.mkdir(parents=True, exist_ok=True)
        with open(self.base / "launch.lock", "a") as lock:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LabError(
                            f"another process has been starting the lab in {self.base} for {timeout:.0f} s; "
                            f"see {self.paths['log']}"
                        ) from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _ensure(self, wanted: ClusterConfig, owner_pid: int | None) -> None:
        self._wait_for_previous(timeout=120.0)
        state = self.published()
        if state and "status" in state:
            running = ClusterConfig(**state["status"]["config"])
            if running.covers(wanted):
                return
            print(f"restarting the lab: it runs {running}, this lesson needs {wanted}")
            self.down()
            self.launch(union(running, wanted), owner_pid=state.get("owner_pid"))
            return
        self.launch(wanted, owner_pid=owner_pid)

    def _wait_for_previous(self, timeout: float = 60.0) -> None:
        """An engine that is still starting or stopping owns the work directory: let it finish first."""
        deadline = time.monotonic() + timeout
        while (state := self.published()) and "status" not in state:
            if time.monotonic() > deadline:
                raise LabError(
                    f"the previous lab (engine pid {state['pid']}) has not finished after "
                    f"{timeout:.0f} s; see {self.paths['log']}"
                )
            time.sleep(0.05)

    def down(self, volumes: bool = False, timeout: float = 60.0) -> None:
        """Stop the engine and with it every process; with `volumes`, also remove the servers' data and logs
        (the local runtime starts every lab on fresh data anyway, so this frees the disk and nothing more)."""
        # What was started beside the lab goes first, while Consul and etcd still answer its deregistration.
        processes.stop_logging_under(self.base / "auxiliary", self.base)
        state = self.published()
        if state:
            if not state.get("stopping"):
                try:
                    self._request("down")
                except (NotRunningError, UnreachableError):
                    os.kill(state["pid"], 15)
            deadline = time.monotonic() + timeout
            while processes.is_alive(state["pid"]) and time.monotonic() < deadline:
                time.sleep(0.05)
            if processes.is_alive(state["pid"]):
                os.kill(state["pid"], 9)
        if volumes:
            shutil.rmtree(self.base / "cluster", ignore_errors=True)

    # -- requests to the engine ------------------------------------------------------------------------
    def _request(self, op: str, **args: Any) -> Any:
        state = self.published()
        if not state or "socket" not in state:
            raise self.not_running()
        try:
            with Client(state["socket"], family="AF_UNIX", authkey=self.paths["key"].read_bytes()) as conn:
                conn.send({"op": op, "args": args})
                reply = conn.recv()
        except (OSError, EOFError) as err:
            raise UnreachableError(f"the lab's engine (pid {state['pid']}) does not answer: {err}") from None
        if not reply["ok"]:
            raise _error(reply)
        return reply["result"]

    def status(self) -> ClusterStatus:
        return ClusterStatus.from_dict(self._request("status"))

    def log_text(self, name: str) -> str:
        """Read here, from the file the engine's process writes (no request: a log can be large)."""
        for p in self.status().processes:
            if p.name == name and p.log_file:
                path = Path(p.log_file)
                return path.read_text(errors="replace") if path.exists() else ""
        raise UnknownProcessError(f"no lab process named {name!r} with a log")

    def act(self, name: str, action: Action) -> dict[str, Any]:
        return self._request("act", name=name, action=Action.parse(action).value)

    def start_together(self, names: list[str]) -> list[str]:
        return self._request("start_together", names=list(names))

    def add_service(self, version: str = "v1", meta: dict[str, str] | None = None) -> dict[str, Any]:
        return self._request("add_service", version=version, meta=meta)

    def remove_service(self, name: str) -> dict[str, Any]:
        return self._request("remove_service", name=name)

    def added_services(self) -> list[str]:
        return self._request("added_services")
