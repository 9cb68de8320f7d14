"""What gRPC really does with a wrong service config: it is not always silent (lesson 07 §1).

    lab.service_config_mistakes(server)   # a table: the mistake, the client's status codes, attempts on the server

Three mistakes, each sent to a server failing every call with UNAVAILABLE, one CreateUser call each:
a config that does not parse (every call on the channel fails with INVALID_ARGUMENT, before any attempt is sent);
`maxAttempts` above 5 (gRPC clamps it to 5 attempts); and a `methodConfig` whose name matches no method (the
policy never applies: one attempt, and nothing says why; the only silent case).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lab_services.core.table import Table
from lab_services.lessons.resilience.retries import attempts_experiment
from lab_services.resilience.retry_policy import retry_service_config

if TYPE_CHECKING:
    from lab_services.service import UserServer


def _raw_options(text: str) -> list[tuple[str, Any]]:
    """Channel options carrying `text` as the service config exactly as written: no lab validation in between."""
    return [("grpc.service_config", text), ("grpc.enable_retries", 1)]


def mistaken_configs() -> dict[str, tuple[str, str]]:
    """Each mistake's service-config text and what gRPC does with it (the claim the experiment checks)."""
    good = retry_service_config(methods=["CreateUser"], max_attempts=5, initial_backoff="0.01s", max_backoff="0.05s")
    nine = json.loads(json.dumps(good))
    nine["methodConfig"][0]["retryPolicy"]["maxAttempts"] = 9
    typo = json.loads(json.dumps(good))
    typo["methodConfig"][0]["name"][0]["method"] = "CreateUsr"
    broken = json.dumps(good)[:-2]  # the closing braces cut off: not JSON any more
    return {
        "does not parse (JSON cut short)": (broken, "every call fails INVALID_ARGUMENT, no attempt sent"),
        "maxAttempts 9": (json.dumps(nine), "clamped to 5 attempts (a line in gRPC's log at most)"),
        "method 'CreateUsr' (a typo)": (json.dumps(typo), "silently ignored: 1 attempt, no retry"),
        "correct, maxAttempts 5": (json.dumps(good), "5 attempts"),
    }


def service_config_mistakes(server: UserServer) -> Table:
    """One CreateUser call per mistaken config against `server` failing every call; what the client and server saw."""
    previous = server.faults.current
    server.faults.set(error_rate=1.0, latency_ms=0)
    rows = []
    try:
        for mistake, (text, claim) in mistaken_configs().items():
            result = attempts_experiment(server, _raw_options(text), calls=1, timeout=5)
            rows.append(
                {
                    "mistake": mistake,
                    "client_codes": result["codes"],
                    "server_attempts": result["server_attempts"],
                    "what gRPC does": claim,
                }
            )
    finally:
        server.faults.set(latency_ms=previous.latency_ms, error_rate=previous.error_rate)
    return Table(rows, ["mistake", "client_codes", "server_attempts", "what gRPC does"])
