"""Long-lived streams against one user-service instance: do its health check and unary calls still answer?

    discovery-lab bench streams --streams 1000 --json      # against the running lab, or a fresh small one

Lesson 05 shows the same failure with `lessons.streaming.starvation.compare_server_kinds`; this module reuses its
OpenStreams, health check and unary probe.

A thread-pool gRPC server gives each open stream one of its workers until the stream ends, so a few
dozen watchers leave nothing for the health check: Consul marks a live instance critical and discovery
drops it. The asyncio server keeps each stream as a suspended coroutine and refuses streams beyond
its stated limit with RESOURCE_EXHAUSTED, so health and unary calls keep answering.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lab_services.core.http import http_json
from lab_services.core.progress import OnStep
from lab_services.lessons.streaming.starvation import OpenStreams, health_check, unary_latencies
from lab_services.runtime.status import ClusterStatus

DEFAULT_STREAMS = 1000


def p99(samples: list[float]) -> float | None:
    if len(samples) < 2:
        return samples[0] if samples else None
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def passing_in_consul(consul_http: str, service: str, instance_id: str) -> bool:
    """Whether Consul's catalog lists the instance as passing, which is what discovery clients read."""
    entries = http_json(f"http://{consul_http}/v1/health/service/{service}?passing")
    return any(entry["Service"]["ID"] == instance_id for entry in entries)


def measure(
    address: str,
    streams: int,
    kind: str = "watch",
    consul_http: str | None = None,
    service: str = "user",
    instance_id: str | None = None,
    hold_seconds: float = 3.0,
    unary_calls: int = 200,
) -> dict[str, Any]:
    """Open `streams` streams on one instance and, while they stay open, ask its health and time unary calls.

    With `consul_http` the streams stay open for `hold_seconds` (three of Consul's 1 s check intervals)
    before Consul's verdict is read, so a starved instance has had time to fail its checks.
    """
    with OpenStreams(address, streams, kind) as load:
        started = time.monotonic()
        answered, failed = unary_latencies(address, unary_calls)
        health = health_check(address)
        if consul_http and instance_id:
            time.sleep(max(0.0, hold_seconds - (time.monotonic() - started)))
            consul_ok = passing_in_consul(consul_http, service, instance_id)
        else:
            consul_ok = None
        return {
            "kind": kind,
            "requested_streams": streams,
            "open_streams": load.established,
            "refused_streams": load.refused,
            "health": health,
            "passing_in_consul": consul_ok,
            "health_ok": health == "SERVING" and consul_ok is not False,
            "unary_calls": unary_calls,
            "unary_failures": failed,
            "p99_unary_seconds": None if (q := p99(answered)) is None else round(q, 4),
        }


@contextlib.contextmanager
def _instance() -> Iterator[dict[str, Any]]:
    """The first running instance of the running lab, or of a fresh small one (1 Consul server, 1 instance)."""
    from lab_services.core.errors import NotRunningError
    from lab_services.runtime import ClusterConfig, connect, open_cluster

    try:
        yield _target(connect().status())
        return
    except NotRunningError:
        pass
    with tempfile.TemporaryDirectory(prefix="lab-bench-streams-") as tmp:
        cluster = open_cluster(Path(tmp), "local")
        try:
            cluster.launch(
                ClusterConfig(consul_servers=1, etcd_members=0, services=1, prometheus=False, registry="consul")
            )
            yield _target(cluster.status())
        finally:
            cluster.down()


def _target(status: ClusterStatus) -> dict[str, Any]:
    if status.tls:
        raise ValueError("invalid argument: lab: bench streams calls plaintext gRPC; start the lab without --tls")
    running = [s for s in status.services if s.state == "running"]
    if not running:
        raise ValueError(
            "invalid argument: lab: no user-service instance is running; `discovery-lab reset` starts them"
        )
    first = running[0]
    consul = status.consul.http
    return {
        "address": first.address,
        "instance_id": first.id,
        "service": first.name,
        "consul_http": consul[0] if consul else None,
    }


def run(streams: int = DEFAULT_STREAMS, kind: str = "watch", progress: OnStep | None = None) -> dict[str, Any]:
    """`bench streams`: `measure` against one instance of the running lab (or a fresh one)."""
    with _instance() as target:
        if progress is not None:
            progress(0, 1, f"streams: holding {streams} {kind} streams open on {target['instance_id']}, measuring")
        result = {
            "instance": target["instance_id"],
            **measure(
                target["address"], streams, kind, target["consul_http"], target["service"], target["instance_id"]
            ),
        }
    if progress is not None:
        progress(1, 1, "streams: done")
    return result


def describe(result: dict[str, Any]) -> str:
    refused = ", ".join(f"{n} {code}" for code, n in result["refused_streams"].items()) or "none"
    return (
        f"{result['open_streams']} of {result['requested_streams']} {result['kind']} streams "
        f"open on {result['instance']} (refused: {refused})\n"
        f"health check: {result['health']}, passing in Consul: {result['passing_in_consul']}\n"
        f"unary p99 while they were open: {result['p99_unary_seconds']} s "
        f"({result['unary_failures']} of {result['unary_calls']} calls failed)"
    )
