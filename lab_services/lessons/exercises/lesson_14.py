"""Lesson 14's capstone: the learner's client, built from the lab's parts, must meet the SLO through a real chaos
run. `resilient_client` is the published solution; `naive_client` is the one-address client it replaces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab_services.lessons.capstone import SLO, ClientError, grade, run_client
from lab_services.lessons.exercises.verdict import Verdict
from lab_services.runtime.cluster import Cluster

NAME = "14-capstone"


# What to change when an objective is missed, in the order of the report card's rows (capstone.grade).
ADVICE = (
    "retry a failed call on another instance (PickerChannel retries=) and follow every Consul server, not one",
    "a hung instance holds each call until its deadline: give every call a short deadline (about 0.25 s) and retry "
    "elsewhere",
    "calls kept going to a dead instance or a dead Consul server: eject failing instances (eject_for=, a breaker "
    "per instance) and watch all the Consul servers",
    "pick only from the instances a watcher lists as passing, and look them up again when Consul's answer changes",
)
DEFAULT_SLO = SLO()  # the capstone's own targets; an SLO is frozen, so one instance serves every check


def check(
    build_client: Any, cluster: Cluster, slo: SLO = DEFAULT_SLO, progress: Callable[[str], None] = print
) -> Verdict:
    """14-capstone: `build_client(consul_http)` returns `call(request) -> served_by`; it runs through the chaos run."""
    try:
        card = grade(run_client(cluster, build_client, progress=progress), slo)
    except ClientError as err:
        return Verdict(NAME, False, str(err))
    failed = [
        f"{row['objective']}: {row['measured']}, so {advice}"
        for row, advice in zip(card.rows, ADVICE, strict=True)
        if row["verdict"] != "pass"
    ]
    if failed:
        return Verdict(NAME, False, "the SLO was missed: " + "; ".join(failed))
    return Verdict(
        NAME,
        True,
        "the SLO held through the chaos run: " + "; ".join(f"{r['objective']}: {r['measured']}" for r in card.rows),
    )


def naive_client(consul_http: list[str]) -> Callable:
    """One address, looked up once, no deadline, no retry: what many first clients look like."""
    import grpc

    from lab_services.core.http import http_json
    from lab_services.service import user_pb2_grpc

    entries = http_json(f"http://{consul_http[0]}/v1/health/service/user?passing")
    first = sorted(entries, key=lambda e: e["Service"]["ID"])[0]["Service"]
    channel = grpc.insecure_channel(f"{first['Address']}:{first['Port']}")
    stub = user_pb2_grpc.UserServiceStub(channel)

    def call(request):
        return stub.CreateUser(request).served_by

    call.close = channel.close
    return call


def resilient_client(consul_http: list[str]) -> Callable:
    """Discovery by watch over every Consul server, round robin with retries elsewhere and ejection, a breaker
    per instance for hangs, and a deadline on every call."""
    from lab_services.discovery import ConsulWatcher, PickerChannel
    from lab_services.resilience import BreakerRegistry
    from lab_services.service import user_pb2_grpc

    watcher = ConsulWatcher("user", consul_http, wait="5s").start()
    breakers = BreakerRegistry(failure_threshold=2, window=4, open_for=3.0)
    channel = PickerChannel(watcher, retries=2, eject_for=3.0, breakers=breakers)
    stub = user_pb2_grpc.UserServiceStub(channel)

    def call(request):
        return stub.CreateUser(request, timeout=0.25).served_by

    def close():
        channel.close()
        watcher.stop()

    call.close = close
    return call


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "The chaos run kills and hangs instances and the Consul leader. A client that holds the SLO follows "
        "the registry (a watcher over every Consul server), puts a deadline on every call, and retries "
        "elsewhere."
    ),
    (
        'Combine `ConsulWatcher("user", consul_http)`, `PickerChannel(watcher, retries=2, eject_for=3.0, '
        "breakers=BreakerRegistry(...))` and a 0.25 s timeout on CreateUser; return `call(request) -> "
        "served_by`, with `call.close` stopping both."
    ),
)

SOLUTION = resilient_client
