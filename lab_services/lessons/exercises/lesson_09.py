"""Lesson 09's exercise: check settings that notice a kill -9 within 2.5 s. The checker says right or wrong and why; `my_settings` is one solution."""
from __future__ import annotations

from typing import Any

from lab_services.lessons import drills
from lab_services.lessons.exercises.verdict import Verdict
from lab_services.runtime.cluster import Cluster

NAME = "09-tune"


def check(settings: Any, cluster: Cluster, within: float = 2.5) -> Verdict:
    """09-tune: check settings with which a killed instance leaves the passing set within `within` seconds."""
    name = NAME
    allowed = {"check_interval", "check_timeout", "ttl"}
    if not isinstance(settings, dict) or not settings or not set(settings) <= allowed:
        return Verdict(name, False, f"return a dict with some of {sorted(allowed)}, e.g. {{'check_interval': '5s'}}")
    try:
        result = drills.service_kill(cluster, recover=False, **settings)
    except ValueError as err:
        return Verdict(name, False, f"Consul would refuse that: {err}")
    removed = result.summary["seconds_to_removed"]
    if removed is None or removed > within:
        return Verdict(name, False, f"the killed probe left the passing set after {removed} s; it must within {within} s. "
                       "A kill -9 is noticed at the next check, so the interval bounds the wait")
    return Verdict(name, True, f"removed {removed:.2f} s after kill -9 with {settings}; Consul's 1 s minimum interval is the floor")


def my_settings() -> dict[str, str]:
    """A kill -9 fails the very next gRPC check, so the interval bounds the wait; 1 s is Consul's floor."""
    return {"check_interval": "1s", "check_timeout": "1s"}


SOLUTION = my_settings
