"""Nothing leaks: children die with their owner, with `down`, at interpreter exit, or at the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from lab_services.runtime import processes


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.is_alive(pid):
            return True
        time.sleep(0.05)
    return False


def _owner_script(tmp_path, body: str) -> subprocess.Popen:
    """A Python process that spawns children into `tmp_path` and prints their pids, then does `body`."""
    script = textwrap.dedent(f"""
        import sys, threading, time
        from pathlib import Path
        from lab_services.runtime import processes
        base = Path({str(tmp_path)!r})
        def spawn(name):
            return processes.spawn(name, [sys.executable, "-c", "import time; time.sleep(600)"],
                                   log_path=base / "logs" / (name + ".log"), base=base)
        def spawn_from_thread(name):
            # From a worker thread the parent-death signal is not armed (it would follow that thread).
            out = []
            t = threading.Thread(target=lambda: out.append(spawn(name)))
            t.start(); t.join()
            return out[0]
    """) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def test_spawned_child_is_recorded_and_stopped(tmp_path):
    child = processes.spawn(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(600)"],
        log_path=tmp_path / "sleeper.log",
        base=tmp_path,
    )
    assert child.alive()
    assert [r.pid for r in processes.live_records(tmp_path)] == [child.pid]
    assert child.stop(timeout=5) is not None
    assert not processes.is_alive(child.pid)
    assert processes.live_records(tmp_path) == []


def test_paused_child_still_stops(tmp_path):
    child = processes.spawn(
        "paused",
        [sys.executable, "-c", "import time; time.sleep(600)"],
        log_path=tmp_path / "paused.log",
        base=tmp_path,
    )
    child.send(signal.SIGSTOP)
    child.stop(timeout=5)
    assert _wait_dead(child.pid)


def test_owner_killed_with_sigkill_takes_its_children(tmp_path):
    owner = _owner_script(
        tmp_path,
        """
        c = spawn("orphan-candidate")
        print(c.pid, flush=True)
        time.sleep(600)
    """,
    )
    pid = int(owner.stdout.readline())
    assert processes.is_alive(pid)
    owner.kill()
    owner.wait()
    assert _wait_dead(pid), "the parent-death signal should have ended the child"


def test_reaper_kills_children_of_a_dead_owner(tmp_path):
    # Spawned from a worker thread, the child has no parent-death signal: only the reaper can find it.
    owner = _owner_script(
        tmp_path,
        """
        print(spawn_from_thread("survivor").pid, flush=True)
        time.sleep(600)
    """,
    )
    pid = int(owner.stdout.readline())
    owner.kill()
    owner.wait()
    time.sleep(0.5)
    assert processes.is_alive(pid), "precondition: this child outlives its owner"
    reaped = processes.reap_orphans(tmp_path)
    assert [r.pid for r in reaped] == [pid]
    assert _wait_dead(pid)
    assert list((tmp_path / "pids").glob("*.json")) == []


def test_reaper_leaves_children_of_a_live_owner_alone(tmp_path):
    child = processes.spawn(
        "mine", [sys.executable, "-c", "import time; time.sleep(600)"], log_path=tmp_path / "mine.log", base=tmp_path
    )
    try:
        assert processes.reap_orphans(tmp_path) == []
        assert child.alive()
    finally:
        child.stop()


def test_interpreter_exit_stops_children(tmp_path):
    owner = _owner_script(
        tmp_path,
        """
        print(spawn_from_thread("atexit-child").pid, flush=True)
        sys.exit(0)
    """,
    )
    pid = int(owner.stdout.readline())
    owner.wait(20)
    assert _wait_dead(pid), "the atexit handler should have stopped the child"


def test_zombie_is_not_alive():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(proc.pid, 0)  # A zombie still answers kill -0 ...
        except ProcessLookupError:
            break
        if not processes.is_alive(proc.pid):  # ... but is_alive must say no.
            break
        time.sleep(0.05)
    assert not processes.is_alive(proc.pid)
    proc.wait()
