"""Lesson 14's capstone against the real lab: the published client meets the SLO through the chaos run, the
naive one-address client does not, and the report card says why."""
from __future__ import annotations

import pytest
from labs import local_lab

from lab_services.lessons import exercises
from lab_services.lessons.capstone import SLO, ChaosRun, grade, run_chaos
from lab_services.lessons.exercises import lesson_14


@pytest.fixture(scope="module")
def chaos_lab(tmp_path_factory):
    # Killed instances restart on the same port minutes later: away from the familiar 5001.. that other labs on a
    # shared machine pick first, so a neighbour cannot take the port meanwhile.
    mp = pytest.MonkeyPatch()
    mp.setenv("LAB_PORT_OFFSET", "17000")
    try:
        with local_lab(tmp_path_factory.mktemp("capstone"), consul_servers=3, etcd_members=0, services=3, prometheus=False,
                       registry="consul", consul_clients=3) as lab:
            yield lab
    finally:
        mp.undo()


def quiet(_: str) -> None:
    """Progress lines are for learners."""


def test_the_published_client_meets_the_slo_and_the_naive_one_does_not(chaos_lab):
    good = exercises.check("14-capstone", lesson_14.resilient_client, cluster=chaos_lab, progress=quiet)
    assert good, good.message
    naive = exercises.check("14-capstone", lesson_14.naive_client, cluster=chaos_lab, progress=quiet)
    assert not naive and "success ratio >= 97%" in naive.message and "no outage" in naive.message
    # The chaos run put the lab back: every instance runs again.
    assert {p.state for p in chaos_lab.status().processes} == {"running"}


def test_a_half_written_client_gets_a_sentence(chaos_lab):
    assert "pass a function build_client" in exercises.check("14-capstone", None, cluster=chaos_lab).message
    assert "build_client raised ZeroDivisionError" in exercises.check("14-capstone", lambda http: 1 / 0, cluster=chaos_lab).message
    assert "return a function call(request)" in exercises.check("14-capstone", lambda http: 42, cluster=chaos_lab).message


def test_the_report_card_reads_the_calls():
    run = ChaosRun(calls=[(0.0, 0.01, True, "OK", "user-1"), (1.0, 0.01, False, "UNAVAILABLE", ""),
                          (2.0, 0.01, False, "UNAVAILABLE", ""), (5.0, 0.02, True, "OK", "user-2")], duration=6.0)
    assert run.longest_outage() == pytest.approx(1.01)
    card = grade(run, SLO(success_ratio=0.5, p99_ms=100, max_outage=1.0))
    assert [r["verdict"] for r in card.rows] == ["pass", "pass", "FAIL"]
    with pytest.raises(ValueError, match="rate: 500; use 1 to 100"):
        run_chaos(None, lambda r: "", rate=500)
