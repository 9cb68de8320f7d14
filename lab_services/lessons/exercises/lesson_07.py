"""Lesson 07's exercise: turn a weak retry policy into one that meets a stated target. The checker runs it against a
failing server and says what misses the target; `my_retry_config` is one solution."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from lab_services.lessons.exercises.verdict import Verdict
from lab_services.lessons.resilience.retries import attempts_experiment
from lab_services.resilience import channel_options, retry_service_config
from lab_services.service import UserServer

NAME = "07-retry"
# The target: at a 30 % injected error rate, at most 3 failed CreateUser calls in 200, each call with a 0.5 s
# deadline, and no more than 5 attempts (gRPC's own ceiling). 5 attempts fail together 0.3**5 = 0.24 % of the
# time (about 0.5 calls in 200); 2 attempts fail 9 % of the time (about 18).
TARGET = {"error_rate": 0.3, "calls": 200, "max_failed": 3, "deadline": 0.5, "max_attempts": 5}
# What the learner starts from: retries CreateUser on UNAVAILABLE, but twice only, and with backoffs far too long
# for a 0.5 s deadline. Returning it unchanged misses the target.
STARTING_CONFIG = retry_service_config(methods=["CreateUser"], max_attempts=2, initial_backoff="1s", max_backoff="5s")


def _policy(config: dict[str, Any]) -> dict[str, Any] | None:
    """The retryPolicy that applies to CreateUser (a name with no method covers the whole service)."""
    for method_config in config.get("methodConfig", []):
        names = method_config.get("name", [])
        if any(n.get("method") in (None, "", "CreateUser") for n in names) and method_config.get("retryPolicy"):
            return method_config["retryPolicy"]
    return None


def check(make_config: Callable[[dict[str, Any]], Any], target: dict[str, Any] | None = None) -> Verdict:
    """07-retry: `make_config(starting_config)` returns a service config meeting TARGET (see the module)."""
    name, goal = NAME, {**TARGET, **(target or {})}
    if not callable(make_config):
        return Verdict(
            name, False, f"define my_retry_config(config) returning a service config dict; got {make_config!r}"
        )
    config = make_config(copy.deepcopy(STARTING_CONFIG))
    if not isinstance(config, dict) or "methodConfig" not in config:
        return Verdict(
            name,
            False,
            f"return a service config dict with 'methodConfig' (change the one you are given); got {config!r}",
        )
    policy = _policy(config)
    if policy is None:
        return Verdict(
            name, False, "no retryPolicy applies to CreateUser; name the method (or the whole service) in 'name'"
        )
    attempts = policy.get("maxAttempts")
    if not isinstance(attempts, int) or attempts > goal["max_attempts"]:
        return Verdict(
            name,
            False,
            f"maxAttempts is {attempts!r}: gRPC clamps anything above 5 to 5, and the target allows "
            f"at most {goal['max_attempts']} attempts; ask for what you will get",
        )
    if "UNAVAILABLE" not in policy.get("retryableStatusCodes", []):
        return Verdict(
            name, False, "retryableStatusCodes must include UNAVAILABLE, the code the failing server answers"
        )
    server = UserServer(name="exercise07").start()
    try:
        server.faults.set(error_rate=goal["error_rate"])
        result = attempts_experiment(
            server, channel_options(json.loads(json.dumps(config))), calls=goal["calls"], timeout=goal["deadline"]
        )
    finally:
        server.stop(0)
    failed = goal["calls"] - result["ok"]
    unchanged = "you returned the starting config unchanged: " if config == STARTING_CONFIG else ""
    if failed > goal["max_failed"]:
        codes = result["codes"]
        if codes.get("DEADLINE_EXCEEDED"):
            why = (
                f"{codes['DEADLINE_EXCEEDED']} calls ran out of their {goal['deadline']} s deadline while waiting to "
                f"retry: initialBackoff {policy.get('initialBackoff')} and maxBackoff {policy.get('maxBackoff')} must "
                "leave room for every attempt (e.g. 0.01s and 0.05s)"
            )
        else:
            why = (
                f"with maxAttempts {attempts} a call fails only when every attempt does: about "
                f"{goal['error_rate'] ** attempts:.1%} of calls, "
                f"{goal['error_rate'] ** attempts * goal['calls']:.1f} in "
                f"{goal['calls']}; more attempts (up to 5) lower that"
            )
        return Verdict(
            name,
            False,
            f"{unchanged}{failed} of {goal['calls']} calls failed ({codes}); the target is at most "
            f"{goal['max_failed']}. {why}",
        )
    spent = result["server_attempts"] / goal["calls"]
    return Verdict(
        name,
        True,
        f"{failed} of {goal['calls']} calls failed at a {goal['error_rate']:.0%} error rate, within "
        f"{goal['deadline']} s each; the price: {result['server_attempts']} attempts ({spent:.2f} per call)",
    )


def my_retry_config(config: dict[str, Any]) -> dict[str, Any]:
    """Five attempts (gRPC's ceiling) fail together 0.3**5 = 0.24 % of the time; backoffs of 10-50 ms fit 4 retries
    into a 0.5 s deadline."""
    policy = config["methodConfig"][0]["retryPolicy"]
    policy.update(maxAttempts=5, initialBackoff="0.01s", maxBackoff="0.05s")
    return config


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "Two things miss the target: the share of calls whose every attempt fails (0.3 to the power of "
        "maxAttempts), and backoffs too long for the retries to fit in a 0.5 s deadline."
    ),
    (
        "Set maxAttempts to 5 (0.3**5 = 0.24 % of calls fail) and initialBackoff / maxBackoff to tens of "
        'milliseconds ("0.01s" and "0.05s") in `config["methodConfig"][0]["retryPolicy"]`.'
    ),
)

SOLUTION = my_retry_config
