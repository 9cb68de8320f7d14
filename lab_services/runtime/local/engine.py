"""The local engine: the one process that runs a local lab's processes and takes orders over a Unix socket.

The compose runtime has the Docker engine; the local runtime has this. `discovery-lab up` has to return while
the cluster keeps running, and a notebook kernel must be able to kill or restart a process the CLI started. So
one long-lived engine process owns the children (their parent-death signal points at it), serves requests on a
Unix socket in the state directory (`LocalCluster` sends them), and stops
everything when told to, when it is terminated, or when the process that asked for it (a kernel) dies.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Listener
from pathlib import Path
from typing import Any

import psutil

from lab_services.core.paths import state_dir
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.local.group import ProcessGroup
from lab_services.runtime.status import ClusterStatus

log = logging.getLogger("discovery-lab.engine")

# What `LocalCluster` may ask: the `ProcessGroup` methods behind the Cluster port.
OPERATIONS = ("status", "act", "start_together", "add_service", "remove_service", "added_services")


def files(base: Path) -> dict[str, Path]:
    """Where an engine publishes itself: its state (pid, socket, status or error) and its socket key."""
    return {
        "state": base / "engine.json",
        "key": base / "engine.key",
        "socket": base / "engine.sock",
        "log": base / "engine.log",
    }


def _publish(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(path)


def _watch_owner(owner_pid: int) -> None:
    """A kernel that dies takes its cluster with it: the engine terminates itself."""
    try:
        owner = psutil.Process(owner_pid)
        owner.wait()
    except psutil.Error:
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def _handle(group: ProcessGroup, request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    if op not in OPERATIONS:
        return {
            "ok": False,
            "error": f"unknown operation {op!r}; use one of {', '.join(OPERATIONS)}",
            "type": "BadInputError",
            "module": "lab_services.core.errors",
        }
    try:
        result = getattr(group, op)(**request.get("args", {}))
        # The status goes over the socket as its JSON object; the client reads it back typed.
        return {"ok": True, "result": result.to_dict() if isinstance(result, ClusterStatus) else result}
    except Exception as err:  # Every failure goes back to the caller, who raises it with the same message.
        log.warning("%s %s failed: %s", op, request.get("args", {}), err)
        return {"ok": False, "error": str(err), "type": type(err).__name__, "module": type(err).__module__}


def serve(config: ClusterConfig, base: Path, owner_pid: int | None) -> int:
    paths = files(base)
    group = ProcessGroup(config, base=base)
    stopping = threading.Event()

    def on_term(signum, frame):
        # Only the first signal interrupts; a second one must not cut the cleanup in `finally` short.
        if not stopping.is_set():
            stopping.set()
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if owner_pid:
        threading.Thread(target=_watch_owner, args=(owner_pid,), daemon=True).start()
    key = secrets.token_bytes(32)
    paths["key"].write_bytes(key)
    paths["key"].chmod(0o600)
    paths["socket"].unlink(missing_ok=True)
    started = time.monotonic()
    try:
        status = group.up()
    except Exception as err:
        # The error stays published (the state file outlives this process) so the caller that launched it reads why.
        group.down()
        _publish(
            paths["state"],
            {"pid": os.getpid(), "error": str(err), "type": type(err).__name__, "module": type(err).__module__},
        )
        for name in ("socket", "key"):
            paths[name].unlink(missing_ok=True)
        log.error("up failed: %s", err)
        return 1
    try:
        log.info("cluster ready in %.2f s", time.monotonic() - started)
        with Listener(str(paths["socket"]), family="AF_UNIX", authkey=key) as listener:
            _publish(
                paths["state"],
                {
                    "pid": os.getpid(),
                    "owner_pid": owner_pid,
                    "socket": str(paths["socket"]),
                    "status": status.to_dict(),
                },
            )
            while True:
                # Requests are served on the main thread on purpose: a process restarted by `start`
                # gets its parent-death signal from the thread that forks it.
                try:
                    with listener.accept() as conn:
                        request = conn.recv()
                        if request.get("op") == "down":
                            conn.send({"ok": True, "result": None})
                            return 0
                        conn.send(_handle(group, request))
                except (EOFError, OSError, ValueError) as err:
                    log.warning("dropped a request: %s", err)
    finally:
        # Say "stopping" first, so no client attaches to a lab that is going away and a new `up` waits.
        _publish(paths["state"], {"pid": os.getpid(), "stopping": True})
        group.down()
        for name in ("socket", "key", "state"):
            paths[name].unlink(missing_ok=True)
        log.info("cluster stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="ClusterConfig as JSON")
    parser.add_argument("--owner-pid", type=int, default=None, help="stop the cluster when this process dies")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return serve(ClusterConfig(**json.loads(args.config)), state_dir(), args.owner_pid)
    except SystemExit as stop:
        return int(stop.code or 0)
    except Exception:
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
