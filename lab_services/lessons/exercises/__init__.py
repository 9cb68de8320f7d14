"""Lesson exercises: a checker per exercise that says right or wrong and why, and a solution an instructor can reveal.

    verdict = check("02-ttl", register, heartbeat, consul_http=CONSUL)
    print(solution("02-ttl"))
    hints("02-ttl")           # hint 1, hint 2, then the solution's code: what the hints widget reveals in turn
    reveal_solutions()        # the instructor's switch (the dashboard's toggle): every verdict now shows its solution

One module per exercise (`lesson_02.py`): its `check`, its `SOLUTION`, a real function the tests run through
the checker, so a published solution cannot rot, and its two `HINTS`. `solution()` shows that function's source.
"""

from __future__ import annotations

import inspect
import sysconfig
import traceback
from dataclasses import replace
from pathlib import Path
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
    lesson_13_attribute,
    lesson_14,
    lesson_15,
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
        lesson_13_attribute,
        lesson_14,
        lesson_15,
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


# Code that is not the learner's: this package, the standard library and installed libraries.
_NOT_YOURS = (
    str(Path(__file__).resolve().parents[2]),
    *{sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")},
)


def _where(err: BaseException) -> str:
    """Where in the learner's own code `err` was raised (their deepest frame), so a crash points at a line."""
    yours = [f for f in traceback.extract_tb(err.__traceback__) if not f.filename.startswith(_NOT_YOURS)]
    if not yours:
        return ""
    frame = yours[-1]
    return f" (in your {frame.name}, line {frame.lineno}: {frame.line})" if frame.line else f" (in your {frame.name})"


def check(exercise: str, *args: Any, **kwargs: Any) -> Verdict:
    """Run the checker of `exercise` (e.g. "02-ttl") on the learner's answer; see each lesson for its arguments."""
    lesson = _lesson(exercise)
    try:
        verdict = lesson.check(*args, **kwargs)
    except Exception as err:  # A learner's half-written answer must get a verdict, not a traceback.
        verdict = Verdict(exercise, False, f"checking your answer raised {type(err).__name__}: {err}{_where(err)}")
    verdict = replace(verdict, solution=solution(exercise)) if _revealed else verdict
    _history.append(verdict)
    # A prediction is a guess, not work that can be stuck: only exercises reach the classroom board.
    if exercise != predictions.NAME:
        report_verdict(verdict)
    return verdict


def history() -> list[Verdict]:
    """Every verdict given in this kernel, oldest first: exercises and predictions alike, for a learner's recap."""
    return list(_history)


def hints(exercise: str) -> list[str]:
    """The graded help for `exercise`, in the order it is revealed: hint 1, hint 2, then one solution's code."""
    lesson = _lesson(exercise)
    if not hasattr(lesson, "HINTS"):
        raise KeyError(f"{exercise!r} has no hints: a prediction is answered by the experiment that follows it")
    return [*lesson.HINTS, solution(exercise)]


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
    "hints",
    "history",
    "names",
    "published",
    "reveal_solutions",
    "solution",
    "solutions_revealed",
]
