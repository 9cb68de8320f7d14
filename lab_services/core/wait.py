"""The one poll helper: ask until something is true, instead of sleeping and hoping, and say what never happened.

    seconds = wait_until(lambda: health.status(check) == "critical", 10, f"{check} to be critical")
    leader = wait_for(lambda: find_leader(), 15, "a new leader")      # the first truthy answer

Connection errors (OSError, which includes urllib's URLError) and half-written answers (ValueError) count as
"not yet": a server that is starting or restarting is exactly what these waits are for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from lab_services.core.errors import LabError

T = TypeVar("T")

NOT_YET = (OSError, ValueError)


class WaitTimeout(LabError, TimeoutError):
    """What was waited for did not happen in time; the message names it, what was seen instead, and the last error."""


def wait_for(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
    not_yet: tuple[type[BaseException], ...] = NOT_YET,
    seen: Callable[[], str] | None = None,
) -> T:
    """Poll `check` until it returns something truthy and return that; WaitTimeout naming `what` otherwise.

    `not_yet` are the exceptions that mean "ask again" (e.g. a client library's connection error); `seen`
    describes the state at the timeout, so the message says what happened instead of only what did not.
    """
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            value = check()
            if value:
                return value
            last_error = ""
        except not_yet as err:
            last_error = f" (last error: {type(err).__name__}: {err})"
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"waited {timeout:g} s for {what}{_seen(seen, not_yet)}{last_error}")
        time.sleep(interval)


def wait_until(
    check: Callable[[], object],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
    since: float | None = None,
    not_yet: tuple[type[BaseException], ...] = NOT_YET,
    seen: Callable[[], str] | None = None,
) -> float:
    """Poll `check` until it is truthy; return the seconds since `since` (a time.monotonic(), default now).

    Passing `since` times a change from the moment it was caused (e.g. a kill), not from when the wait began.
    """
    start = time.monotonic() if since is None else since
    wait_for(check, timeout, what, interval=interval, not_yet=not_yet, seen=seen)
    return time.monotonic() - start


def _seen(seen: Callable[[], str] | None, not_yet: tuple[type[BaseException], ...]) -> str:
    if seen is None:
        return ""
    try:
        return f", but {seen()}"
    except not_yet:
        return ", and the server did not answer"
