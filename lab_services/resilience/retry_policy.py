"""Build gRPC service configs with a retryPolicy (or a hedgingPolicy), checked field by field before gRPC sees them.

    config = retry_service_config(max_attempts=4, initial_backoff="0.05s")
    channel = grpc.insecure_channel(address, options=channel_options(config))

gRPC retries a call only while it is not committed: once the server has sent response headers (any
initial metadata) the attempt's outcome is final, whatever its code (gRFC A6). Before attempt n+1 it
waits a random time between 0 and min(initialBackoff * backoffMultiplier**(n-1), maxBackoff): the same
"full jitter" as core.backoff.Backoff. Python gRPC parses a hedgingPolicy and then ignores it;
`lessons.resilience.retries.hedging_experiment` shows that by counting the attempts a server receives.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

import grpc

DEFAULT_SERVICE = "lab.user.v1.UserService"
MAX_ATTEMPTS = 5  # gRPC lowers any larger maxAttempts to 5; we refuse it so the config says what happens.
# proto3 JSON for google.protobuf.Duration: seconds with up to nine decimals and a trailing "s".
_DURATION = re.compile(r"\d+(\.\d{1,9})?s")
_STATUS_NAMES = {code.name for code in grpc.StatusCode} - {"OK"}


def _invalid(field: str, value: Any, fix: str) -> ValueError:
    return ValueError(f"invalid argument: {field}: {value!r}; {fix}")


def _names(service: str, methods: Iterable[str] | None) -> list[dict[str, str]]:
    if not isinstance(service, str) or not service.strip():
        raise _invalid("service", service, 'use a full service name, e.g. "lab.user.v1.UserService"')
    if methods is None:
        return [{"service": service}]
    methods = [methods] if isinstance(methods, str) else list(methods)
    if not methods or not all(isinstance(m, str) and m and "/" not in m for m in methods):
        raise _invalid("methods", methods, 'use method names such as ["GetUser"], or None for every method')
    return [{"service": service, "method": m} for m in methods]


def _attempts(max_attempts: Any) -> int:
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or not 2 <= max_attempts <= MAX_ATTEMPTS:
        raise _invalid("max_attempts", max_attempts, f"gRPC allows 2 to {MAX_ATTEMPTS}")
    return max_attempts


def _duration(field: str, value: Any, allow_zero: bool = False) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise _invalid(field, value, f'write seconds as a string with an "s", e.g. "{value}s"')
    if not isinstance(value, str) or not _DURATION.fullmatch(value):
        raise _invalid(field, value, 'use seconds with an "s", e.g. "0.1s" (gRPC\'s JSON duration)')
    if not allow_zero and float(value[:-1]) == 0:
        raise _invalid(field, value, 'must be more than zero, e.g. "0.1s"')
    return value


def _codes(field: str, codes: Any, allow_empty: bool = False) -> list[str]:
    if isinstance(codes, (str, grpc.StatusCode)):
        codes = [codes]
    names = [c.name if isinstance(c, grpc.StatusCode) else c for c in codes]
    bad = [n for n in names if n not in _STATUS_NAMES]
    if bad or (not names and not allow_empty):
        raise _invalid(field, bad or list(names), 'use grpc.StatusCode names other than OK, e.g. ["UNAVAILABLE"]')
    return list(dict.fromkeys(names))


def retry_service_config(
    service: str = DEFAULT_SERVICE,
    methods: Iterable[str] | None = None,
    max_attempts: int = 3,
    initial_backoff: str = "0.1s",
    max_backoff: str = "1s",
    backoff_multiplier: float = 2,
    retryable_status_codes: Iterable[str | grpc.StatusCode] = ("UNAVAILABLE",),
) -> dict[str, Any]:
    """A service config retrying `methods` of `service` (all of them if None); ValueError names a bad field.

    >>> retry_service_config(methods=["GetUser"], max_attempts=4)["methodConfig"][0]["retryPolicy"]["maxAttempts"]
    4
    """
    names = _names(service, methods)
    if (
        isinstance(backoff_multiplier, bool)
        or not isinstance(backoff_multiplier, (int, float))
        or not math.isfinite(backoff_multiplier)
        or backoff_multiplier <= 0
    ):
        raise _invalid("backoff_multiplier", backoff_multiplier, "use a number > 0, e.g. 2")
    return {
        "methodConfig": [
            {
                "name": names,
                "retryPolicy": {
                    "maxAttempts": _attempts(max_attempts),
                    "initialBackoff": _duration("initial_backoff", initial_backoff),
                    "maxBackoff": _duration("max_backoff", max_backoff),
                    "backoffMultiplier": backoff_multiplier,
                    "retryableStatusCodes": _codes("retryable_status_codes", retryable_status_codes),
                },
            }
        ]
    }


def hedging_service_config(
    service: str = DEFAULT_SERVICE,
    methods: Iterable[str] | None = None,
    max_attempts: int = 3,
    hedging_delay: str = "0.05s",
    non_fatal_status_codes: Iterable[str | grpc.StatusCode] = ("UNAVAILABLE",),
) -> dict[str, Any]:
    """A service config with a hedgingPolicy: send another attempt every `hedging_delay` until one answers.

    Valid, and accepted by Python gRPC, which then sends one attempt only (see hedging_experiment).
    """
    return {
        "methodConfig": [
            {
                "name": _names(service, methods),
                "hedgingPolicy": {
                    "maxAttempts": _attempts(max_attempts),
                    "hedgingDelay": _duration("hedging_delay", hedging_delay, allow_zero=True),
                    "nonFatalStatusCodes": _codes("non_fatal_status_codes", non_fatal_status_codes, allow_empty=True),
                },
            }
        ]
    }


def channel_options(config: dict[str, Any]) -> list[tuple[str, Any]]:
    """Channel options that apply `config`: pass them to grpc.insecure_channel(address, options=...)."""
    return [("grpc.service_config", json.dumps(config)), ("grpc.enable_retries", 1)]
