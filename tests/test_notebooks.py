"""Every lesson runs headless, top to bottom, against the real local lab, as a learner would run it."""
from __future__ import annotations

import contextlib
from typing import Iterator

import nbformat
import pytest
from nbclient import NotebookClient
import papermill

from lab_services.core.paths import REPO_DIR
from lab_services.runtime.cluster import Cluster

LESSONS = sorted((REPO_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_lessons():
    numbers = [p.name[:2] for p in LESSONS]
    assert numbers == [f"{n:02d}" for n in range(15)], f"expected lessons 00-14 in {REPO_DIR / 'notebooks'}, found {numbers}"


@pytest.mark.notebook
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_top_to_bottom(path, lab, tmp_path):
    with restored_on_failure(lab):
        run_lesson(path, tmp_path)
    assert lab.status().consul.leader, "a lesson must leave the shared lab running with a leader"


@contextlib.contextmanager
def restored_on_failure(cluster: Cluster) -> Iterator[None]:
    """Put the lab back when a lesson fails, then let the failure through: what it left behind (an added instance,
    a stopped server) must not fail the lessons after it as well."""
    try:
        yield
    except Exception:
        cluster.restore()
        raise


def run_lesson(path, out_dir) -> None:
    """Execute a lesson headless and keep the executed copy in `out_dir` to read after a failure."""
    notebook = nbformat.read(path, as_version=4)
    # The kernel inherits LAB_STATE_DIR (and LAB_BACKEND) from the test session, so the lesson reuses the shared lab.
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    finally:
        nbformat.write(notebook, out_dir / path.name)


def _parameters(notebook: nbformat.NotebookNode) -> str:
    """The source of the papermill-tagged parameters cell ('' when there is none)."""
    return next((c.source for c in notebook.cells if "parameters" in c.metadata.get("tags", [])), "")


@pytest.mark.notebook
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_with_solutions(path, lab, tmp_path):
    """The lesson again with SHOW_SOLUTION=True, injected as papermill does: each exercise cell then runs the published
    solution through its checker, and the lesson asserts the verdict is right."""
    notebook = nbformat.read(path, as_version=4)
    parameters = _parameters(notebook)
    assert parameters, f"{path.name} has no cell tagged 'parameters'; papermill cannot set SHOW_SOLUTION"
    assert "SHOW_SOLUTION" in parameters, f"{path.name}'s parameters cell does not define SHOW_SOLUTION; add SHOW_SOLUTION = False"
    # `papermill --prepare-only -p SHOW_SOLUTION True`: the parameters injected, nothing run yet. nbclient then runs
    # it in a kernel that inherits LAB_STATE_DIR, so the lesson reuses the shared lab as in the test above.
    notebook = papermill.execute_notebook(str(path), str(tmp_path / f"prepared-{path.name}"), parameters={"SHOW_SOLUTION": True},
                                          prepare_only=True, kernel_name="python3", progress_bar=False)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        with restored_on_failure(lab):
            client.execute()
    finally:
        nbformat.write(notebook, tmp_path / path.name)  # the executed copy, to read after a failure
    injected = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "SHOW_SOLUTION = True" in injected[0].source, "papermill did not inject SHOW_SOLUTION = True"
    assert lab.status().consul.leader, "a lesson must leave the shared lab running with a leader"
