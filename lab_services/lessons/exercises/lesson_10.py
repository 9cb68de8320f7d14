"""Lesson 10's exercise: add a setting end to end (validate, apply, report) and prove it hot-reloads everywhere in time.

The learner defines `page_size` (an integer from 1 to 100, default 20) as a `Setting`. The checker tries its parser
on good and bad texts, then starts instances that follow the lab's store with the schema plus the new setting,
writes a value and times until every instance reports it, and writes a bad one that every instance must reject.
"""

from __future__ import annotations

import time
from typing import Any

from lab_services.core.wait import WaitTimeout, wait_until
from lab_services.lessons.config_centre import Fleet, wait_applied
from lab_services.lessons.exercises.verdict import Verdict
from lab_services.runtime.cluster import Cluster
from lab_services.service.config_store import open_store
from lab_services.service.settings import SCHEMA, Setting, int_between

NAME = "10-new-setting"
WITHIN_S = 2.0  # the stated time: every instance applies a write within 2 s


def _parser_problem(setting: Setting) -> str | None:
    """What is wrong with the parser, or None: good texts parse, bad ones raise ValueError."""
    for text, expected in (("1", 1), ("42", 42), (" 100 ", 100)):
        try:
            got = setting.parse(text)
        except Exception as err:  # a half-written parser must get a sentence, not a traceback
            return f"parse({text!r}) raised {type(err).__name__}: {err}; it should return {expected}"
        if got != expected or isinstance(got, bool):
            return f"parse({text!r}) returned {got!r}; it should return the integer {expected}"
    for text in ("0", "101", "ten", ""):
        try:
            got = setting.parse(text)
        except ValueError:
            continue
        except Exception as err:
            return (
                f"parse({text!r}) raised {type(err).__name__}; "
                "raise ValueError saying why, so the instance can report it"
            )
        return f"parse({text!r}) returned {got!r}; page_size must be an integer from 1 to 100, so raise ValueError"
    return None


def _states(fleet: Fleet) -> str:
    """Each instance's page_size and, if it refused a revision, why: what a learner needs when one lags."""
    states = []
    for name, admin in fleet.admins.items():
        report = admin.settings()
        refused = f", refused {report['rejected']['errors']}" if report["rejected"] else ""
        states.append(f"{name}: page_size={report['values'].get('page_size')!r}{refused}")
    return "; ".join(states)


def check(setting: Any, cluster: Cluster, store: str = "consul", instances: int = 2) -> Verdict:
    """10-new-setting: `setting` is Setting("page_size", 20, parse) and hot-reloads on every instance within 2 s."""
    if not isinstance(setting, Setting):
        return Verdict(NAME, False, f"expected a Setting(name, default, parse), got {setting!r}")
    if setting.name != "page_size" or setting.default != 20:
        return Verdict(
            NAME, False, f"expected name 'page_size' and default 20, got {setting.name!r} and {setting.default!r}"
        )
    problem = _parser_problem(setting)
    if problem:
        return Verdict(NAME, False, problem)
    prefix = f"config/exercise-{time.time_ns():x}"
    writer = None
    try:
        with Fleet(store, cluster, size=instances, prefix=prefix, schema={**SCHEMA, setting.name: setting}) as fleet:
            writer = open_store(store, fleet.address, prefix)
            written = time.time()
            writer.put("page_size", "42")
            try:
                reports = wait_applied(fleet.admins, "page_size", 42, timeout=WITHIN_S + 3)
            except WaitTimeout as err:
                return Verdict(
                    NAME,
                    False,
                    f"page_size=42 was written but not applied everywhere ({err}); what they report: " + _states(fleet),
                )
            took = max(r["applied_at"] for r in reports.values()) - written
            if took > WITHIN_S:
                return Verdict(
                    NAME,
                    False,
                    f"every instance applied page_size=42, but only after {took:.2f} s (limit {WITHIN_S:g} s)",
                )
            writer.put("page_size", "1000")
            try:
                wait_until(
                    lambda: all(a.settings()["rejected"] for a in fleet.admins.values()),
                    WITHIN_S + 3,
                    "every instance to reject page_size=1000",
                )
            except WaitTimeout:
                return Verdict(
                    NAME,
                    False,
                    "page_size=1000 was not rejected by every instance; the parser must refuse it: " + _states(fleet),
                )
            kept = {n: a.settings()["values"]["page_size"] for n, a in fleet.admins.items()}
            if set(kept.values()) != {42}:
                return Verdict(NAME, False, f"after the bad value the instances run {kept}; they should keep 42")
            return Verdict(
                NAME,
                True,
                f"page_size=42 reached all {instances} instances in {1000 * took:.0f} ms "
                f"(limit {WITHIN_S:g} s); page_size=1000 was rejected and 42 kept",
            )
    finally:
        if writer is not None:
            writer.delete_all()


def page_size_setting() -> Setting:
    """page_size: an integer from 1 to 100, default 20; the schema's int_between parser names the range when it
    refuses."""
    return Setting("page_size", 20, int_between(1, 100), "how many users ListUsers returns per page")


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "A parser takes the stored text and returns the value, or raises ValueError saying why; the instance "
        "then reports the rejection and keeps its last good value. Texts arrive as strings, possibly with "
        "spaces."
    ),
    (
        '`lab.int_between(1, 100)` is such a parser; by hand: `n = int(text.strip())` (int("ten") already '
        "raises ValueError), then raise ValueError when not `1 <= n <= 100`, and return n."
    ),
)

SOLUTION = page_size_setting
