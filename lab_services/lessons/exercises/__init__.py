"""Lesson exercises: a checker per exercise that says right or wrong and why, and a solution an instructor can reveal.

    verdict = check("02-ttl", register, heartbeat, consul_http=CONSUL)
    print(solution("02-ttl"))
    reveal_solutions()        # the instructor's switch (the dashboard's toggle): every verdict now shows its solution

One module per lesson (`lesson_02.py`): its `check` and its `SOLUTION`, a real function the tests run through
the checker, so a published solution cannot rot. `solution()` shows that function's source.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from types import ModuleType
from typing import Any

from lab_services.lessons.exercises import (
    lesson_00,
    lesson_01,
    lesson_02,
    lesson_03,
    lesson_04,
    lesson_05,
    lesson_06,
    lesson_07,
    lesson_08,
    lesson_09,
    lesson_10,
    lesson_11,
    lesson_12,
    lesson_13,
    lesson_14,
    predictions,
)
from lab_services.lessons.exercises.verdict import Verdict
from lab_services.lessons.reporter import report_verdict

LESSONS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        lesson_00,
        lesson_01,
        lesson_02,
        lesson_03,
        lesson_04,
        lesson_05,
        lesson_06,
        lesson_07,
        lesson_08,
        lesson_09,
        lesson_10,
        lesson_11,
        lesson_12,
        lesson_13,
        lesson_14,
        predictions,
    )
}

_revealed = False
_history: list[Verdict] = []


def reveal_solutions(on: bool = True) -> None:
    """The instructor's switch: while on, every verdict carries the exercise's solution (in this kernel)."""
    global _revealed
    _revealed = bool(on)


def solutions_revealed() -> bool:
    return _revealed


def names() -> list[str]:
    return sorted(LESSONS)


def _lesson(exercise: str) -> ModuleType:
    if exercise not in LESSONS:
        raise KeyError(f"no exercise named {exercise!r}; the exercises are {', '.join(names())}")
    return LESSONS[exercise]


def check(exercise: str, *args: Any, **kwargs: Any) -> Verdict:
    """Run the checker of `exercise` (e.g. "02-ttl") on the learner's answer; see each lesson for its arguments."""
    lesson = _lesson(exercise)
    try:
        verdict = lesson.check(*args, **kwargs)
    except Exception as err:  # A learner's half-written answer must get a verdict, not a traceback.
        verdict = Verdict(exercise, False, f"checking your answer raised {type(err).__name__}: {err}")
    verdict = replace(verdict, solution=solution(exercise)) if _revealed else verdict
    _history.append(verdict)
    # A prediction is a guess, not work that can be stuck: only exercises reach the classroom board.
    if exercise != predictions.NAME:
        report_verdict(verdict)
    return verdict


def history() -> list[Verdict]:
    """Every verdict given in this kernel, oldest first: exercises and predictions alike, for a learner's recap."""
    return list(_history)


def published(exercise: str) -> Any:
    """The published solution itself (a function), so a notebook run with SHOW_SOLUTION=True checks it for real."""
    return _lesson(exercise).SOLUTION


def solution(exercise: str) -> str:
    """The code of one way to solve `exercise`: the source of its lesson module's SOLUTION function."""
    lesson = _lesson(exercise)
    return f"# {lesson.__name__}\n" + inspect.getsource(lesson.SOLUTION)


__all__ = [
    "LESSONS",
    "Verdict",
    "check",
    "history",
    "names",
    "published",
    "reveal_solutions",
    "solution",
    "solutions_revealed",
]
