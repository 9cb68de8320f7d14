"""Lesson 07's exercise: a retry policy that turns 50% errors into about 6%. The checker says right or wrong and why; `my_retry_config` is one solution."""
from __future__ import annotations

import json
from typing import Any

from lab_services.lessons.exercises.verdict import Verdict
from lab_services.lessons.resilience.retries import attempts_experiment
from lab_services.resilience import channel_options, retry_service_config
from lab_services.service import UserServer

NAME = "07-retry"


def check(config: Any, error_rate: float = 0.5, calls: int = 100) -> Verdict:
    """07-retry: a service config that retries CreateUser on UNAVAILABLE with 4 attempts; tried against a failing server."""
    name = NAME
    if not isinstance(config, dict) or "methodConfig" not in config:
        return Verdict(name, False, f"return a service config dict with 'methodConfig', e.g. from retry_service_config(...); got {config!r}")
    policies = [c.get("retryPolicy") for c in config["methodConfig"]
                if any(n.get("method") in (None, "CreateUser") for n in c.get("name", []))]
    policy = next((p for p in policies if p), None)
    if policy is None:
        return Verdict(name, False, "no retryPolicy applies to CreateUser; name the method (or the whole service) in 'name'")
    if policy.get("maxAttempts") != 4:
        return Verdict(name, False, f"maxAttempts is {policy.get('maxAttempts')!r}; the exercise asks for 4 attempts in all")
    if "UNAVAILABLE" not in policy.get("retryableStatusCodes", []):
        return Verdict(name, False, "retryableStatusCodes must include UNAVAILABLE, the code the failing server answers")
    server = UserServer(name="exercise07").start()
    try:
        server.faults.set(error_rate=error_rate)
        result = attempts_experiment(server, channel_options(json.loads(json.dumps(config))), calls=calls)
    finally:
        server.stop(0)
    # With four attempts a call fails only if all four do: error_rate**4, about 6 in 100 at 0.5.
    if result["ok"] < calls * 0.85:
        return Verdict(name, False, f"only {result['ok']} of {calls} calls succeeded ({result['server_attempts']} attempts reached "
                       "the server); is the backoff short enough (e.g. initial_backoff='0.01s') for calls with a 5 s deadline?")
    return Verdict(name, True, f"{result['ok']} of {calls} calls succeeded against a server failing half its calls, "
                   f"with {result['server_attempts']} attempts: retries turned {error_rate:.0%} errors into "
                   f"about {error_rate ** 4:.0%}")


def my_retry_config() -> dict[str, Any]:
    """Retry CreateUser on UNAVAILABLE, four attempts in all, with backoffs short against a 5 s deadline."""
    return retry_service_config(
        methods=["CreateUser"], max_attempts=4, initial_backoff="0.01s", max_backoff="0.1s",
        retryable_status_codes=["UNAVAILABLE"],
    )


SOLUTION = my_retry_config
