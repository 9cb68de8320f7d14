"""The one way the lab starts a child process, and the ways it stops and reaps them, so nothing outlives its owner.

Every child gets three safety nets (docs/architecture.md): the kernel sends it SIGTERM when its parent dies
(`setpriv --pdeathsig`), an `atexit` handler stops it when the interpreter exits normally, and a pid file
in the state directory lets the next `up` find and kill it if its owner died without cleaning up.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from lab_services.core.paths import state_dir

_children: dict[int, Child] = {}
_lock = threading.Lock()


@dataclass
class ProcessRecord:
    """What a pid file says: enough to recognise the process later even if its pid was reused."""

    name: str
    pid: int
    owner_pid: int
    owner_started: float
    started: float
    argv: list[str]
    log: str

    def matches_live_process(self) -> bool:
        """True while the recorded process runs (not a zombie) and is the same one, not a reused pid."""
        return is_alive(self.pid) and abs(psutil.Process(self.pid).create_time() - self.started) < 1.0

    def owner_alive(self) -> bool:
        try:
            return abs(psutil.Process(self.owner_pid).create_time() - self.owner_started) < 1.0 and is_alive(
                self.owner_pid
            )
        except psutil.Error:
            return False


def is_alive(pid: int) -> bool:
    """Running or stopped, but not a zombie: `kill -0` says yes to zombies, so ask for the process status."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def pid_dir(base: Path | None = None) -> Path:
    path = (base or state_dir()) / "pids"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Child:
    """A running child: its Popen, its pid file, and the signals the drills send it."""

    def __init__(self, name: str, popen: subprocess.Popen, record: ProcessRecord, pid_file: Path):
        self.name = name
        self.popen = popen
        self.record = record
        self.pid_file = pid_file

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def log_path(self) -> Path:
        return Path(self.record.log)

    def alive(self) -> bool:
        return self.popen.poll() is None and is_alive(self.pid)

    def send(self, sig: signal.Signals) -> None:
        """Signal the whole process group, so wrappers and their children get it too."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL; a stopped (paused) process is continued first so it can exit."""
        if self.popen.poll() is None:
            self.send(signal.SIGCONT)
            self.send(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.send(signal.SIGKILL)
                self.popen.wait(10)
        self.forget()
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL with no warning, as a crash would; the caller decides whether to forget it."""
        self.send(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)
        self.forget()

    def forget(self) -> None:
        self.pid_file.unlink(missing_ok=True)
        with _lock:
            _children.pop(self.pid, None)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(
    name: str,
    argv: list[str],
    *,
    log_path: Path | None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    base: Path | None = None,
) -> Child:
    """Start `argv` as a tracked child whose output goes to `log_path` (None: to this process's terminal).

    The child leads its own session (so a terminal's Ctrl-C or a kernel interrupt does not reach it, and
    its whole group can be signalled), and dies with its parent thread through PR_SET_PDEATHSIG. That
    signal follows the *thread* that forked, so it is only armed from the main thread; children spawned
    from other threads rely on the atexit handler and the reaper.
    """
    owner = psutil.Process()
    full = list(argv)
    setpriv = shutil.which("setpriv")
    if setpriv and threading.current_thread() is threading.main_thread():
        full = [setpriv, "--pdeathsig", "TERM", "--", *full]
    log = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")  # noqa: SIM115 (the child inherits it; closed in the finally below)
    try:
        popen = subprocess.Popen(
            full,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    finally:
        if log:
            log.close()
    try:
        started = psutil.Process(popen.pid).create_time()
    except psutil.Error:
        started = time.time()
    record = ProcessRecord(name, popen.pid, owner.pid, owner.create_time(), started, full, str(log_path or ""))
    pid_file = pid_dir(base) / f"{name}.{popen.pid}.json"
    pid_file.write_text(json.dumps(asdict(record)))
    child = Child(name, popen, record, pid_file)
    with _lock:
        _children[popen.pid] = child
    return child


def _recorded(base: Path | None, forget_unreadable: bool = False) -> Iterator[tuple[Path, ProcessRecord]]:
    """Every pid file with its record; one that cannot be read is skipped (removed, with `forget_unreadable`)."""
    for pid_file in sorted(pid_dir(base).glob("*.json")):
        try:
            record = ProcessRecord(**json.loads(pid_file.read_text()))
        except (OSError, ValueError, TypeError):
            if forget_unreadable:
                pid_file.unlink(missing_ok=True)
            continue
        yield pid_file, record


def reap_orphans(base: Path | None = None) -> list[ProcessRecord]:
    """Kill the processes left by owners that died (a killed kernel), and return what was reaped.

    Pid files of processes that are already gone are just removed; processes whose owner still runs
    belong to somebody else's live lab and are left alone.
    """
    reaped = []
    for pid_file, record in _recorded(base, forget_unreadable=True):
        if record.owner_alive():
            continue
        if record.matches_live_process():
            _kill_group(record.pid)
            reaped.append(record)
        pid_file.unlink(missing_ok=True)
    return reaped


def stop_logging_under(folder: Path, base: Path | None = None) -> list[ProcessRecord]:
    """Stop every recorded process whose log is under `folder`, whoever started it, and return them: how `down`
    takes the processes started beside a lab (a drill's probe, the Go service) with the lab itself."""
    stopped = []
    for pid_file, record in _recorded(base):
        if not Path(record.log).is_relative_to(folder):
            continue
        with _lock:
            child = _children.get(record.pid)
        if child is not None:
            child.stop(timeout=5.0)
        elif record.matches_live_process():
            _kill_group(record.pid)
        pid_file.unlink(missing_ok=True)
        stopped.append(record)
    return stopped


def live_records(base: Path | None = None) -> list[ProcessRecord]:
    """Processes the pid files say are running right now, whoever owns them."""
    return [record for _, record in _recorded(base) if record.matches_live_process()]


def _kill_group(pid: int, timeout: float = 5.0) -> None:
    for sig in (signal.SIGCONT, signal.SIGTERM):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_alive(pid):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def spawn_detached(argv: list[str], *, log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a process meant to outlive this one (the local engine behind `discovery-lab up`).

    It is not tracked here: it watches its own owner and cleans up its own children.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )


def stop_all_children() -> None:
    """Stop every child this interpreter started; registered with atexit."""
    with _lock:
        children = list(_children.values())
    for child in children:
        child.stop(timeout=5.0)


atexit.register(stop_all_children)
