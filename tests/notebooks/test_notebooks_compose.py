"""Every lesson runs headless in the compose stack's own JupyterLab container, as a learner's kernel runs it.

The stack starts as the README tells a learner (`docker compose -f compose/docker-compose.yml up`), plus the CI
override that swaps in the images built from Debian's packages. Each lesson is prepared here with its solutions
(papermill, as for the local runtime) and executed by nbconvert inside the JupyterLab container: its kernel reaches
the servers over the stack's bridge network and drives the containers through the mounted Docker socket.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import nbformat
import pytest
from docker_engine import require_engine
from test_notebooks import LESSONS, prepare_lesson, restored_on_failure

from lab_services.core.paths import REPO_DIR
from lab_services.core.wait import wait_until
from lab_services.runtime.compose import engine
from lab_services.runtime.compose.cluster import ComposeCluster

JUPYTER = "discovery-lab-jupyter-1"
UP = ["docker", "compose", "-f", "compose/docker-compose.yml", "-f", "compose/ci.override.yml", "up", "-d", "--wait"]


def jupyter_answers() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{engine.published_ports()['LAB_JUPYTER_PORT']}/api", timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def stack(local_lab_down):
    """The learner's command (with the CI images), then the lab ready by the runtime's own readiness checks."""
    require_engine()
    lab = ComposeCluster()
    lab.down()
    started = subprocess.run(UP, cwd=REPO_DIR, capture_output=True, text=True, timeout=600)
    assert started.returncode == 0, f"`{' '.join(UP)}` failed:\n{started.stderr[-3000:]}"
    lab.up()
    wait_until(jupyter_answers, 60, "JupyterLab to answer on 127.0.0.1")
    yield lab
    lab.down()
    assert not lab.running(), "the compose lab left containers behind"


def run_in_jupyter(path: Path, out_dir: Path) -> nbformat.NotebookNode:
    """Prepare `path` with its solutions, execute it in the JupyterLab container's kernel, keep the executed copy."""
    prepared = prepare_lesson(path, out_dir)
    argv = ["docker", "exec", "-i", "-w", "/lab/notebooks", JUPYTER, "python3", "-m", "nbconvert", "--to", "notebook"]
    argv += ["--execute", "--stdin", "--stdout", "--ExecutePreprocessor.timeout=300"]
    done = subprocess.run(argv, input=nbformat.writes(prepared), capture_output=True, text=True, timeout=900)
    if done.stdout:
        (out_dir / path.name).write_text(done.stdout)
    assert done.returncode == 0, f"{path.name} failed in the JupyterLab container:\n{done.stderr[-4000:]}"
    return nbformat.reads(done.stdout, as_version=4)


@pytest.mark.notebook
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_in_the_stacks_jupyterlab(path, stack, tmp_path):
    with restored_on_failure(stack):
        run_in_jupyter(path, tmp_path)
    status = stack.status()
    assert status.consul.leader and all(p.state == "running" for p in status.processes), (
        "a lesson must leave the compose lab as it found it"
    )
