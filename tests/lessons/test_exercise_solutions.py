"""Every exercise's published solution (a function in its lesson module) passes its own checker, on the real lab."""

from __future__ import annotations

import tempfile

import pytest

from lab_services.lessons import exercises
from lab_services.lessons.exercises import lesson_05, lesson_06, lesson_07, lesson_09
from lab_services.tls import TLSMaterial


def test_05_resume():
    verdict = exercises.check("05-resume", lesson_05.next_request)
    assert verdict, verdict.message


def test_06_mtls():
    with tempfile.TemporaryDirectory() as tmp:
        verdict = exercises.check("06-mtls", lesson_06.my_mtls_channel, material=TLSMaterial.create(tmp))
    assert verdict, verdict.message


def test_07_retry():
    verdict = exercises.check("07-retry", lesson_07.my_retry_config)
    assert verdict, verdict.message


def test_09_tune(lab):
    verdict = exercises.check("09-tune", lesson_09.my_settings(), cluster=lab)
    assert verdict, verdict.message


def test_every_exercise_shows_its_solution_as_source():
    for name, lesson in exercises.LESSONS.items():
        assert f"def {lesson.SOLUTION.__name__}(" in exercises.solution(name), name


@pytest.mark.parametrize(
    "name,answer,says",
    [
        ("05-resume", None, "define next_request(received)"),
        ("06-mtls", None, "define my_mtls_channel(address, ca_file, cert_file, key_file)"),
        ("07-retry", {"methodConfig": []}, "define my_retry_config(config)"),
        ("07-retry", lambda config: {"methodConfig": []}, "no retryPolicy applies to CreateUser"),
        ("07-retry", lambda config: None, "return a service config dict"),
        ("09-tune", None, "return a dict with ['check_interval', 'check_timeout']"),
        (
            "09-tune",
            {"check_interval": "10s"},
            "a kill -9 is noticed at the next check, so it can take a whole interval (10 s)",
        ),
        (
            "09-tune",
            {"check_interval": "1s", "check_timeout": "5s"},
            "a hang is noticed only when a check times out: up to interval + timeout = 6 s",
        ),
        ("09-tune", {"check_interval": "soon"}, "a setting is not a duration"),
    ],
)
def test_a_wrong_answer_is_told_why(name, answer, says):
    kwargs = {"material": None} if name == "06-mtls" else {"cluster": None} if name == "09-tune" else {}
    verdict = exercises.check(name, answer, **kwargs)
    # The exact sentence, so a checker that crashed (check() turns that into "not yet") cannot pass for one that judged.
    assert not verdict and verdict.message.startswith(says), verdict.message


def _bump(attempts: int, backoff: str):
    def make(config):
        config["methodConfig"][0]["retryPolicy"].update(
            maxAttempts=attempts, initialBackoff=backoff, maxBackoff=backoff
        )
        return config

    return make


# The starting config returned unchanged is the notebook's own blank answer: test_unanswered_exercises.py runs it.
@pytest.mark.parametrize(
    "answer,says",
    [
        (_bump(9, "0.01s"), "maxAttempts is 9: gRPC clamps anything above 5 to 5"),
        (_bump(5, "1s"), "ran out of their 0.5 s deadline while waiting to retry"),
        (_bump(2, "0.01s"), "with maxAttempts 2 a call fails only when every attempt does"),
    ],
)
def test_07_a_policy_that_misses_the_target_is_told_what_misses(answer, says):
    verdict = exercises.check("07-retry", answer)
    assert not verdict and says in verdict.message, verdict.message


def test_06_a_channel_without_the_client_certificate_is_told_it_needs_all_three_files():
    from pathlib import Path

    import grpc

    def tls_only(address, ca_file, cert_file, key_file):
        return grpc.secure_channel(address, grpc.ssl_channel_credentials(Path(ca_file).read_bytes()))

    with tempfile.TemporaryDirectory() as tmp:
        material = TLSMaterial.create(tmp)
        for answer in (tls_only, lambda address, *files: grpc.insecure_channel(address)):
            verdict = exercises.check("06-mtls", answer, material=material)
            assert not verdict and "the call failed with UNAVAILABLE" in verdict.message, verdict.message
            assert "An mTLS channel needs all three files" in verdict.message, verdict.message
