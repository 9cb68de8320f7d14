"""Lesson 13's first exercise: name the slow instance from the spans alone.

The lesson makes one instance slow at random and hands the learner its spans (`tracing_lab.slow_mystery`); the
learner writes `find_slowest(spans)`. The checker runs it on those spans and on fresh rounds in which each instance in
turn is the slow one, so only an answer computed from the spans passes, and it knows the truth from the lab (which
instance it slowed), not from the spans. A wrong answer is matched against the usual mistakes to say which it was.
"""

from __future__ import annotations

import random
import statistics
from typing import Any

from lab_services.lessons.exercises.verdict import Verdict
from lab_services.lessons.tracing_lab import SlowMystery, TracedSystem, slow_mystery
from lab_services.tracing import ReceivedSpan

NAME = "13-slowest"


def _medians(spans: list[ReceivedSpan], service: str, kind: str, key: str) -> dict[str, float]:
    """Median ms per instance over the spans of `service` and `kind`, the instance read from attribute `key`."""
    times: dict[str, list[float]] = {}
    for span in spans:
        if span.service == service and span.kind == kind and key in span.attributes:
            times.setdefault(span.attributes[key], []).append(span.ms)
    return {name: statistics.median(ms) for name, ms in times.items()}


def _mistakes(rounds: list[SlowMystery], answers: list[Any]) -> list[str]:
    """The usual mistakes that explain every one of the learner's answers (with two instances, a wrong answer is
    always the fastest by the caller's spans, so more than one may fit: each is named)."""
    callers = [_medians(r.spans, "gateway", "client", "net.peer") for r in rounds]
    callees = [_medians(r.spans, "user", "server", "lab.instance") for r in rounds]
    found = []
    if all(c and a == max(c, key=c.get) for c, a in zip(callees, answers, strict=True)):
        found.append(
            "your answers follow the user instances' own SERVER spans, which miss the delay: it happens before the "
            "handler (and its span) starts. Measure where the caller waits: the gateway's CLIENT spans, by the "
            "instance they called"
        )
    if all(c and a == min(c, key=c.get) for c, a in zip(callers, answers, strict=True)):
        found.append(
            "each time you named the instance the gateway waited for least (its CLIENT spans' median): the fastest; "
            "the slow one is the one it waited for most"
        )
    if len(set(answers)) == 1 and len({r.slow for r in rounds}) > 1:
        found.append(
            f"you named {answers[0]!r} every time, while the slow instance changed "
            f"({', '.join(r.slow for r in rounds)}): compute the name from the spans you are given"
        )
    return found


def _because(mistakes: list[str]) -> str:
    if not mistakes:
        return "Group the gateway's CLIENT spans by 'net.peer' and compare their times."
    if len(mistakes) == 1:
        return mistakes[0][0].upper() + mistakes[0][1:] + "."
    return "Your answers fit " + " and ".join(f"({n}) {m}" for n, m in enumerate(mistakes, 1)) + "."


def check(
    find_slowest: Any, system: TracedSystem, mystery: SlowMystery | None = None, latency_ms: float = 150
) -> Verdict:
    """13-slowest: `find_slowest(spans)` returns the name ('user-1', ...) of the instance that answered slowest;
    tried on the lesson's `mystery` and on one fresh round per instance, each slowed by `latency_ms` in turn."""
    if not callable(find_slowest):
        return Verdict(
            NAME, False, f"pass a function find_slowest(spans) that returns an instance name; got {find_slowest!r}"
        )
    names = sorted(u.instance_id for u in system.users)
    rounds = [mystery] if mystery is not None else []
    rounds += [slow_mystery(system, latency_ms, slow=name) for name in random.sample(names, len(names))]
    answers = [find_slowest(list(r.spans)) for r in rounds]
    strange = [a for a in answers if a not in names]
    if strange:
        return Verdict(
            NAME,
            False,
            f"return one of {names}, got {strange[0]!r}; the spans name instances in their attributes: "
            "'net.peer' on the gateway's CLIENT spans, 'lab.instance' on the users' SERVER spans",
        )
    wrong = [(r, a) for r, a in zip(rounds, answers, strict=True) if a != r.slow]
    if wrong:
        first, answer = wrong[0]
        where = "in the lesson's spans" if first is mystery else f"in a round where {first.slow} was slowed"
        return Verdict(
            NAME,
            False,
            f"{len(wrong)} of {len(rounds)} answers were wrong: {where} you named {answer}, but {first.slow} was "
            f"{first.latency_ms:.0f} ms slower per call. {_because(_mistakes(rounds, answers))}",
        )
    return Verdict(
        NAME,
        True,
        f"right {len(rounds)} times out of {len(rounds)}: "
        + ("in the lesson's spans, and " if mystery is not None else "")
        + f"with each of {', '.join(names)} slowed in turn; the spans alone said which",
    )


def slowest(spans: list[ReceivedSpan]) -> str:
    """The instance whose calls, as the gateway's CLIENT spans measured them, took longest in the median.

    The caller's span covers the whole wait; the slow instance's own SERVER span starts after the delay."""
    waits: dict[str, list[float]] = {}
    for span in spans:
        if span.service == "gateway" and span.kind == "client":
            waits.setdefault(span.attributes["net.peer"], []).append(span.ms)
    return max(waits, key=lambda peer: statistics.median(waits[peer]))


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "Who waits for a slow instance? Its caller. Look at `tl.span_table(mystery.spans[:5])`: every call has a "
        "span by the gateway as a CLIENT and one by the user instance as a SERVER; which of them covers the wait?"
    ),
    (
        'Keep the spans with `service == "gateway"` and `kind == "client"`, collect `span.ms` per '
        '`span.attributes["net.peer"]`, and return the instance with the largest median (`statistics.median`).'
    ),
)

SOLUTION = slowest
