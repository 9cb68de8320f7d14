"""Each lesson's exercise cell, left unanswered, gets a failing verdict that says what to do.

The cell's own blank answer is built from the notebook (tests/notebook_cells.py) and judged by the real checker.
These exercises judge a blank answer before they touch a server, so they need none; the exercises whose blank
answer is judged against servers are proven beside their other checker tests: 00, 02, 03 and 04 in
test_exercises_00_04.py, 12 in test_lesson_12.py, 13 in test_tracing.py, 14 in test_capstone.py.
"""

from __future__ import annotations

import tempfile

import pytest
from notebook_cells import unanswered

from lab_services.lessons import exercises
from lab_services.tls import TLSMaterial

# lesson -> (what its earlier cells defined that the exercise cell reads, the start of the blank answer's verdict)
BLANK = {
    "01": ({"stub": None}, "return the ImportSummary that stub.ImportUsers(...) answers"),
    "05": ({}, "after receiving 1, 2, 3 the server sent []; expected [4, 5]"),
    "07": ({}, "you returned the starting config unchanged: "),
    "08": ({"PROM": "http://127.0.0.1:1"}, "set `my_query` to a PromQL string"),
    "09": ({"cluster": None}, "return a dict with ['check_interval', 'check_timeout']"),
    "10": ({"cluster": None}, "parse('1') returned None; it should return the integer 1"),
    "11": ({"cluster": None}, "no grpc.keepalive_time_ms: without pings nothing notices a process"),
    "15": ({"ENDPOINTS": ["127.0.0.1:1"]}, "address_of('/services/user/127.0.0.1:8080', b'') returned None"),
}


@pytest.mark.parametrize("lesson", sorted(BLANK))
def test_an_unanswered_exercise_is_told_what_to_do(lesson):
    names, says = BLANK[lesson]
    exercise, args, kwargs = unanswered(lesson, **names)
    verdict = exercises.check(exercise, *args, **kwargs)
    assert not verdict and verdict.message.startswith(says), verdict.message


def test_06_an_unanswered_mtls_channel_is_refused_by_the_server():
    with tempfile.TemporaryDirectory() as tmp:
        exercise, args, kwargs = unanswered("06", material=TLSMaterial.create(tmp))
        verdict = exercises.check(exercise, *args, **kwargs)
    assert not verdict and "the call failed with UNAVAILABLE" in verdict.message, verdict.message
