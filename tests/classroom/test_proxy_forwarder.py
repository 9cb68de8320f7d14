"""The proxy's forwarder process ends with JupyterLab: on SIGTERM, at any moment, and when its parent dies.

A forwarder once outlived its JupyterLab for good: its SIGTERM handler set a threading.Event while the main thread
held that Event's lock, and waited for it forever. SIGTERM is now taken with sigtimedwait, so no handler runs.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from lab_services.core.wait import wait_until


def start_forwarder(tmp_path, index: int) -> tuple[subprocess.Popen, str]:
    socket = str(tmp_path / f"f{index}.sock")
    child = subprocess.Popen(
        [sys.executable, "-m", "lab_services.classroom.proxy", "prometheus", "--unix-socket", socket],
        env={**os.environ, "LAB_STATE_DIR": str(tmp_path / "no-lab")},
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: os.path.exists(socket), 20, "the forwarder's socket")
    return child, socket


def test_sigterm_at_any_moment_ends_the_forwarder_and_removes_its_socket(tmp_path):
    rng = random.Random(7)
    for index in range(12):
        child, socket = start_forwarder(tmp_path, index)
        time.sleep(rng.uniform(0, 1.2))  # anywhere in its one-second watch of the parent
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=5) == 0, f"round {index}: the forwarder did not exit cleanly"
        assert not os.path.exists(socket), f"round {index}: the socket was left behind"


def test_a_forwarder_whose_parent_dies_exits_by_itself(tmp_path):
    script = (
        "import subprocess, sys, os; "
        "p = subprocess.Popen([sys.executable, '-m', 'lab_services.classroom.proxy', 'prometheus', "
        f"'--unix-socket', {str(tmp_path / 'orphan.sock')!r}]); print(p.pid, flush=True); os._exit(0)"
    )
    parent = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "LAB_STATE_DIR": str(tmp_path / "no-lab")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    orphan = int(parent.stdout.split()[0])

    def gone() -> bool:
        try:
            os.kill(orphan, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{orphan}/stat") as stat:  # a zombie of init's is gone too
            return stat.read().split(")")[-1].split()[0] == "Z"

    wait_until(gone, 20, f"the orphaned forwarder {orphan} to exit")
