"""Every lesson runs headless, top to bottom, against the real local lab, as a learner would run it."""
from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from lab_services.core.paths import REPO_DIR

LESSONS = sorted((REPO_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_lessons():
    numbers = [p.name[:2] for p in LESSONS]
    assert numbers == [f"{n:02d}" for n in (*range(10), 12, 13, 14)], f"expected lessons 00-09 and 12-14 in {REPO_DIR / 'notebooks'}, found {numbers}"


@pytest.mark.notebook
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_top_to_bottom(path, lab, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    # The kernel inherits LAB_STATE_DIR from the test session, so the lesson reuses the shared lab.
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    nbformat.write(notebook, tmp_path / path.name)
    assert lab.status().consul.leader, "a lesson must leave the shared lab running with a leader"
