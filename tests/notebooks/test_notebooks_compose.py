"""Lessons 00, 02, 03 and 09 run headless on the compose runtime (LAB_BACKEND=compose), as on the local one."""

from __future__ import annotations

import pytest
from docker_engine import require_engine
from test_notebooks import LESSONS, restored_on_failure, run_lesson

from lab_services.runtime.compose.cluster import ComposeCluster

COMPOSE_LESSONS = [p for p in LESSONS if p.name[:2] in ("00", "02", "03", "09")]


@pytest.fixture(scope="module")
def compose_lab(local_lab_down):
    """One stack for the four lessons: the first lesson's ensure_cluster would start it; starting it here
    makes the teardown certain, and the kernels find it by its project name."""
    require_engine()
    lab = ComposeCluster()
    lab.up()
    yield lab
    lab.down()
    assert not lab.running(), "the compose lab left containers behind"


def test_the_four_lessons_are_there():
    assert len(COMPOSE_LESSONS) == 4, COMPOSE_LESSONS


@pytest.mark.notebook
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", COMPOSE_LESSONS, ids=[p.stem for p in COMPOSE_LESSONS])
def test_lesson_runs_on_the_compose_runtime(path, compose_lab, tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_BACKEND", "compose")
    with restored_on_failure(compose_lab):
        run_lesson(path, tmp_path)
    status = compose_lab.status()
    assert status.consul.leader and all(p.state == "running" for p in status.processes), (
        "a lesson must leave the compose lab as it found it"
    )
