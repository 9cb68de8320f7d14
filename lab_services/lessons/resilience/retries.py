"""Lesson 07's retry experiments: how many attempts reach a server with a retry policy, and that hedging is ignored."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import grpc

from lab_services.lessons.resilience.measure import create_user_call, run_calls, server_attempts, wait_idle
from lab_services.resilience.retry_policy import channel_options, hedging_service_config

if TYPE_CHECKING:
    from lab_services.service import UserServer


def attempts_experiment(
    server: UserServer,
    options: list[tuple[str, Any]] | None = None,
    calls: int = 200,
    timeout: float = 5.0,
    address: str | None = None,
) -> dict[str, Any]:
    """Make `calls` CreateUser calls to an in-process UserServer (or through `address`, e.g. a gateway in front).

    Returns {"calls", "ok", "codes", "server_attempts"}: what the client saw and how many attempts
    reached `server`, read from its metrics. Faults are whatever is set on the server now.
    """
    before = server_attempts(server)
    with grpc.insecure_channel(address or server.address, options=options or []) as channel:
        codes = run_calls(create_user_call(channel, timeout), calls)
    wait_idle(server)
    return {
        "calls": calls,
        "ok": codes.get("OK", 0),
        "codes": dict(codes),
        "server_attempts": server_attempts(server) - before,
    }


def hedging_experiment(
    server: UserServer, latency_ms: float = 300, max_attempts: int = 3, hedging_delay: str = "0.05s"
) -> dict[str, Any]:
    """One call with a hedging policy to a server slowed by `latency_ms`; how many attempts did it get?

    A client that implemented hedging would send another attempt every `hedging_delay` while the first
    one is slow, up to `max_attempts` in all. Python gRPC sends exactly one.
    """
    config = hedging_service_config(max_attempts=max_attempts, hedging_delay=hedging_delay)
    previous = server.faults.current
    server.faults.set(latency_ms=latency_ms, error_rate=0)
    try:
        result = attempts_experiment(server, channel_options(config), calls=1, timeout=latency_ms / 1000 + 10)
    finally:
        server.faults.set(latency_ms=previous.latency_ms, error_rate=previous.error_rate)
    delay = float(hedging_delay[:-1])
    return {
        "hedging_would_send": min(max_attempts, 1 + math.floor(latency_ms / 1000 / delay)) if delay else max_attempts,
        "server_attempts": result["server_attempts"],
        "ok": result["ok"],
    }
