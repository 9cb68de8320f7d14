"""Lesson 13's exercise: name the slow instance from the spans alone. The checker makes a random instance slow
for real, sends traffic, and hands the learner's function every span the receiver got; `slowest` is one solution."""

from __future__ import annotations

import random
from typing import Any

from lab_services.lessons.exercises.verdict import Verdict
from lab_services.lessons.tracing_lab import TracedSystem, slow_instance_traffic

NAME = "13-slowest"


def check(find_slowest: Any, system: TracedSystem, latency_ms: float = 150, calls: int = 12) -> Verdict:
    """13-slowest: `find_slowest(spans)` must return the instance name ('user-1', ...) that answered slowest."""
    if not callable(find_slowest):
        return Verdict(NAME, False, "pass a function find_slowest(spans) -> 'user-1' or 'user-2'")
    slow = random.choice([u.instance_id for u in system.users])
    spans = slow_instance_traffic(system, slow, latency_ms, calls)
    answer = find_slowest(spans)
    names = sorted(u.instance_id for u in system.users)
    if answer not in names:
        return Verdict(
            NAME,
            False,
            f"return one of {names}, got {answer!r}; the gateway's client spans carry the "
            "instance they called in attributes['net.peer']",
        )
    if answer != slow:
        return Verdict(
            NAME,
            False,
            f"{answer} was not the slow one this time ({slow} was, {latency_ms:.0f} ms more per "
            "call). The user's own SERVER spans miss the delay, which happens before its handler: "
            "measure where the caller waits, the gateway's CLIENT spans",
        )
    return Verdict(NAME, True, f"{slow} was slow ({latency_ms:.0f} ms more per call), and the spans said so")


def slowest(spans: list) -> str:
    """The instance whose calls, as the gateway's CLIENT spans measured them, took longest in the median."""
    import statistics

    waits: dict[str, list[float]] = {}
    for span in spans:
        if span.service == "gateway" and span.kind == "client":
            waits.setdefault(span.attributes["net.peer"], []).append(span.ms)
    return max(waits, key=lambda peer: statistics.median(waits[peer]))


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "Who waits for a slow instance? The caller. Group the spans the gateway made as a CLIENT by the "
        'instance they called (`attributes["net.peer"]`).'
    ),
    (
        'Keep spans with `service == "gateway"` and `kind == "client"`, collect `span.ms` per `net.peer`, and'
        " return the peer with the largest median."
    ),
)

SOLUTION = slowest
