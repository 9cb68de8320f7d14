"""The predict-then-observe widget, driven as a learner would: choose, lock in, then the lesson reveals."""

from __future__ import annotations

import pytest

from lab_services.lessons import exercises
from lab_services.lessons.predict import asked, predict, reveal


def test_a_locked_guess_is_checked_when_the_answer_is_revealed():
    question = predict(
        "t.dcsa",
        "What happens to a 30s DeregisterCriticalServiceAfter?",
        ["refused", "raised to 1m", "accepted as 30s"],
    )
    question.options.value = "raised to 1m"
    question.lock_button.click()
    assert question.guess == "raised to 1m" and question.options.disabled
    question.options.value = "refused"  # a learner cannot change the guess after locking it; the widget is disabled
    reveal("t.dcsa", "raised to 1m", "the agent raises it to its minimum")
    verdict = asked("t.dcsa").verdict
    assert verdict.ok and "you predicted 'raised to 1m'" in verdict.message
    assert exercises.history()[-1] == verdict
    assert "right" in question.result.value


def test_a_wrong_guess_and_no_guess_are_named():
    wrong = predict("t.wrong", "q?", ["a", "b"])
    wrong.options.value = "a"
    wrong.lock_button.click()
    reveal("t.wrong", "b", "because")
    assert wrong.verdict.message == "you predicted 'a'; the lab showed 'b'. because"
    silent = predict("t.none", "q?", ["a", "b"])
    silent.lock_button.click()  # nothing chosen: nothing is locked in
    assert silent.guess is None and "choose one" in silent.result.value
    reveal("t.none", "a", "")
    assert silent.verdict.message == "no guess was locked in before the experiment; it showed 'a'."


def test_bad_input_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="two or more distinct"):
        predict("t.bad", "q?", ["only"])
    predict("t.answer", "q?", ["a", "b"])
    with pytest.raises(ValueError, match="'c' is not one of the choices"):
        reveal("t.answer", "c", "")
    with pytest.raises(KeyError, match=r"no question 't\.never'"):
        reveal("t.never", "a", "")
