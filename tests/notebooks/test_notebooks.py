"""Every lesson runs headless, top to bottom, with its solutions revealed, against the real local lab.

Each lesson runs once, with `SHOW_SOLUTION = True` injected as papermill does: every exercise cell then runs the
published solution through its checker, and every checkpoint asserts on the real servers. The blank answers a
learner starts from are judged by the checkers in tests/lessons/test_unanswered_exercises.py (and beside each lesson's
other checker tests), in seconds instead of a second run of every notebook.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from lab_services.core.paths import REPO_DIR
from lab_services.runtime.cluster import Cluster

LESSONS = sorted((REPO_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# The suite's size of each lesson: the same cells and the same assertions as a learner's run, with fewer repeats and
# shorter windows (a learner's parameters cell keeps the teaching size). Every value here still satisfies the
# lesson's own checkpoints: e.g. lesson 09's default interval stays well above its tuned one.
CI_SIZE: dict[str, dict[str, Any]] = {
    "03": {"MEASURE_SECONDS": 2},
    "07": {
        "PANEL_SECONDS": 3
    },  # CALLS stays 100: "about 30 % fail without retries" is a rate, and 60 calls miss it 1 time in 200
    "08": {"WATCH_SECONDS": 15},
    "09": {"REPEATS": 1, "DEFAULT_INTERVAL": "5s"},
    "10": {"REPEATS": 5},  # the learner's own: with 3, two writes held up by CI's load decided the median
    "11": {"NEW_INSTANCE_WINDOW": 5},  # CALLS stays 30: the reused-vs-new-channel medians need the samples
}


def test_there_are_lessons():
    numbers = [p.name[:2] for p in LESSONS]
    assert numbers == [f"{n:02d}" for n in range(16)], (
        f"expected lessons 00-15 in {REPO_DIR / 'notebooks'}, found {numbers}"
    )


def test_every_ci_size_names_parameters_the_lesson_has():
    for lesson, sizes in CI_SIZE.items():
        [path] = [p for p in LESSONS if p.name.startswith(lesson)]
        parameters = _parameters(nbformat.read(path, as_version=4))
        missing = [name for name in sizes if f"{name} =" not in parameters]
        assert not missing, f"{path.name}'s parameters cell has no {missing}"


# The lessons run in three groups of about equal length (3.3-3.5 min each, measured in CI), one module each
# (test_lessons_a.py ...), so that `--dist loadfile` runs them on three workers at once, each on its own lab.
LESSON_GROUPS = {
    "a": ("00", "01", "04", "07", "12", "15"),
    "b": ("02", "05", "06", "08", "09"),
    "c": ("03", "10", "11", "13", "14"),
}


def test_every_lesson_is_in_one_group():
    grouped = sorted(n for group in LESSON_GROUPS.values() for n in group)
    assert grouped == [p.name[:2] for p in LESSONS], f"LESSON_GROUPS must name every lesson once: {LESSON_GROUPS}"
    for group in LESSON_GROUPS:
        assert (Path(__file__).parent / f"test_lessons_{group}.py").exists(), (
            f"no test module runs lesson group {group}"
        )


def lesson_test(group: str):
    """The test that runs every lesson of `group` with its solutions (a module per group calls this once)."""
    paths = [p for p in LESSONS if p.name[:2] in LESSON_GROUPS[group]]

    @pytest.mark.notebook
    @pytest.mark.timeout(600)
    @pytest.mark.parametrize("path", paths, ids=[p.stem for p in paths])
    def test_lesson_runs_with_solutions(path, lab, tmp_path, record_property):
        with restored_on_failure(lab):
            notebook = run_lesson(path, tmp_path)
        record_property("slowest_cells", slowest_cells(notebook))
        assert lab.status().consul.leader, "a lesson must leave the shared lab running with a leader"

    return test_lesson_runs_with_solutions


@contextlib.contextmanager
def restored_on_failure(cluster: Cluster) -> Iterator[None]:
    """Put the lab back when a lesson fails, then let the failure through: what it left behind (an added instance,
    a stopped server) must not fail the lessons after it as well."""
    try:
        yield
    except Exception:
        cluster.reset()
        raise


def _parameters(notebook: nbformat.NotebookNode) -> str:
    """The source of the papermill-tagged parameters cell ('' when there is none)."""
    return next((c.source for c in notebook.cells if "parameters" in c.metadata.get("tags", [])), "")


def prepare_lesson(path: Path, out_dir: Path) -> nbformat.NotebookNode:
    """`path` with its solutions revealed and the suite's size injected (`papermill --prepare-only`), nothing run."""
    parameters = _parameters(nbformat.read(path, as_version=4))
    assert "SHOW_SOLUTION" in parameters, f"{path.name} has no parameters cell with SHOW_SOLUTION = False"
    notebook = papermill.execute_notebook(
        str(path),
        str(out_dir / f"prepared-{path.name}"),
        prepare_only=True,
        parameters={"SHOW_SOLUTION": True, **CI_SIZE.get(path.name[:2], {})},
        kernel_name="python3",
        progress_bar=False,
    )
    injected = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "SHOW_SOLUTION = True" in injected[0].source, "papermill did not inject SHOW_SOLUTION = True"
    return notebook


def run_lesson(path: Path, out_dir: Path) -> nbformat.NotebookNode:
    """Execute a lesson headless with its solutions and the suite's size, and keep the executed copy in `out_dir`.

    `papermill --prepare-only -p SHOW_SOLUTION True ...` injects the parameters and runs nothing; nbclient then runs
    the notebook in a kernel that inherits LAB_STATE_DIR (and LAB_BACKEND), so the lesson reuses the test session's lab.
    """
    notebook = prepare_lesson(path, out_dir)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        km=kernel_manager(out_dir),
    )
    try:
        client.execute()
    finally:
        nbformat.write(notebook, out_dir / path.name)  # the executed copy, to read after a failure
    return notebook


def kernel_manager(out_dir: Path) -> AsyncKernelManager:
    """A kernel that talks over Unix sockets in `out_dir`. Over TCP, jupyter_client picks free ports and frees them
    before the kernel binds them, and with three workers starting kernels at once one kernel died binding a port
    another had taken meanwhile ("Address already in use" in CI)."""
    return AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(out_dir / "kernel"))


def slowest_cells(notebook: nbformat.NotebookNode, count: int = 3) -> str:
    """'cell 18: 41.2 s; cell 25: 30.1 s; ...' from nbclient's timing, so a lesson's cost shows in the junit report."""
    took = []
    for index, cell in enumerate(notebook.cells):
        timing = cell.metadata.get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if start and end:
            took.append((datetime.fromisoformat(end.rstrip("Z")) - datetime.fromisoformat(start.rstrip("Z")), index))
    return "; ".join(f"cell {i}: {t.total_seconds():.1f} s" for t, i in sorted(took, reverse=True)[:count])
