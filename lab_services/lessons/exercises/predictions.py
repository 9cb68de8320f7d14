"""Predict-then-observe: a learner's guess, checked against what the experiment then showed on the real cluster.

`lab.predict(...)` asks before a lesson shows; `lab.reveal(...)` answers after it has run. The verdict goes
through `exercises.check("predict", ...)` like every other exercise, so an instructor's history of verdicts
holds the guesses too.
"""

from __future__ import annotations

from lab_services.lessons.exercises.verdict import Verdict

NAME = "predict"


def check(key: str, guess: str | None, answer: str, why: str = "") -> Verdict:
    """predict: was `guess` (None when none was locked in) the answer the experiment showed? `why` explains it."""
    because = f" {why}" if why else ""
    if guess is None:
        return Verdict(
            f"{NAME} {key}", False, f"no guess was locked in before the experiment; it showed {answer!r}.{because}"
        )
    if guess == answer:
        return Verdict(f"{NAME} {key}", True, f"you predicted {guess!r}, and that is what the lab showed.{because}")
    return Verdict(f"{NAME} {key}", False, f"you predicted {guess!r}; the lab showed {answer!r}.{because}")


def the_observed_answer(answer: str) -> str:
    """The only solution to a prediction: run the experiment, then believe what the server did."""
    return answer


SOLUTION = the_observed_answer
