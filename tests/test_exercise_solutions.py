"""Every exercise's published solution (a real function in its lesson module) passes its own checker, against the real lab."""
from __future__ import annotations

import tempfile

import pytest

from lab_services.lessons import exercises
from lab_services.lessons.exercises import lesson_05, lesson_06, lesson_07
from lab_services.service import UserServer
from lab_services.tls import TLSMaterial


def test_05_resume():
    verdict = exercises.check("05-resume", lesson_05.next_request)
    assert verdict, verdict.message


def test_06_mtls():
    with tempfile.TemporaryDirectory() as tmp:
        verdict = exercises.check("06-mtls", lesson_06.my_mtls_channel, material=TLSMaterial.create(tmp))
    assert verdict, verdict.message


def test_07_retry():
    verdict = exercises.check("07-retry", lesson_07.my_retry_config())
    assert verdict, verdict.message


def test_every_exercise_shows_its_solution_as_source():
    for name, lesson in exercises.LESSONS.items():
        assert f"def {lesson.SOLUTION.__name__}(" in exercises.solution(name), name


@pytest.mark.parametrize("name,answer,says", [
    ("05-resume", None, "define next_request(received)"),
    ("06-mtls", None, "define my_mtls_channel(address, material)"),
    ("07-retry", {"methodConfig": []}, "no retryPolicy applies to CreateUser"),
])
def test_a_wrong_answer_is_told_why(name, answer, says):
    kwargs = {"material": None} if name == "06-mtls" else {}
    verdict = exercises.check(name, answer, **kwargs)
    # The exact sentence, so a checker that crashed (check() turns that into "not yet") cannot pass for one that judged.
    assert not verdict and verdict.message.startswith(says), verdict.message
