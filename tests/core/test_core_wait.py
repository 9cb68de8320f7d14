"""The one poll helper: it returns once the answer is yes; a timeout says what never happened and what was seen."""

from __future__ import annotations

import itertools
import time

import pytest

from lab_services.core.wait import WaitTimeout, wait_for, wait_until


def test_wait_for_returns_the_first_truthy_answer_and_retries_connection_errors():
    answers = iter([ConnectionRefusedError("not yet"), None, ValueError("half a JSON"), "leader-2"])

    def ask():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_for(ask, 5, "a leader", interval=0.001) == "leader-2"


def test_wait_until_times_from_since():
    since = time.monotonic() - 1.0
    assert wait_until(lambda: True, 1, "nothing", since=since) >= 1.0


def test_a_timeout_names_what_was_awaited_what_was_seen_and_the_last_error():
    calls = itertools.count()

    def ask():
        if next(calls) % 2:
            raise OSError("connection refused")
        return False

    with pytest.raises(WaitTimeout) as caught:
        wait_until(ask, 0.05, "the check to be critical", interval=0.001, seen=lambda: "it is passing")
    message = str(caught.value)
    assert message.startswith("waited 0.05 s for the check to be critical, but it is passing")
    assert isinstance(caught.value, TimeoutError)


def test_other_errors_are_not_swallowed():
    with pytest.raises(KeyError):
        wait_until(lambda: {}["missing"], 1, "a key")
