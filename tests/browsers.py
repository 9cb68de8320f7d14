"""Debian's chromium for the browser tests, and JupyterLab servers for them to open, started like a learner's."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lab_services.core.http import http_get
from lab_services.core.ports import PortAllocator
from lab_services.core.wait import wait_until
from lab_services.runtime import processes

CHROMIUM = Path("/usr/bin/chromium")
# docs/architecture.md: Debian's chromium, never `playwright install`, and nothing that phones home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# A developer who shares the machine may give the test's JupyterLab a port of their own; otherwise it prefers 8900
# plus the worker's LAB_PORT_OFFSET, as lesson 00's browser test does.
JUPYTER_PORT_ENV = "LAB_TEST_JUPYTER_PORT"


def chromium_or_skip() -> Path:
    """Debian's chromium; a skip on a machine without it, a failure in CI (where the browser tests must run)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing; `make setup` installs Debian's chromium (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {reason}")
        pytest.skip(reason)
    return CHROMIUM


@contextmanager
def jupyterlab_server(tmp: Path, token: str, args: list[str], env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """A real `jupyter lab` on a free loopback port with its own settings, workspaces and runtime files under `tmp`;
    yields its URL and pid once its API answers, and stops it at the end. Its log sits under
    `tmp/logs`, where conftest finds it for a failing test."""
    fixed = os.environ.get(JUPYTER_PORT_ENV)
    port = PortAllocator("127.0.0.1").explicit(int(fixed), JUPYTER_PORT_ENV) if fixed else PortAllocator().free(8900)
    argv = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1"]
    argv += [f"--ServerApp.port={port}", f"--ServerApp.token={token}", *args]
    env = {
        "JUPYTERLAB_SETTINGS_DIR": str(tmp / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        **env,
    }
    server = processes.spawn("jupyterlab", argv, log_path=tmp / "logs" / "jupyterlab.log", env=env, base=tmp / "state")
    url = f"http://127.0.0.1:{port}"
    base_url = next((a.split("=", 1)[1] for a in args if a.startswith("--ServerApp.base_url=")), "/")
    try:

        def answering() -> bool:
            if not server.alive():
                raise RuntimeError(f"JupyterLab exited with code {server.popen.poll()}:\n{server.tail()}")
            return http_get(f"{url}{base_url}api/status?token={token}")[0] == 200

        wait_until(answering, 60, "JupyterLab to answer")
        yield url, server.pid
    finally:
        server.stop(timeout=20)
