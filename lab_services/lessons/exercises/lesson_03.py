"""Lesson 03's exercise: route only to `v2`, with a filter expression Consul evaluates, and prove it with counts.

The learner writes `v2_channel(consul_http)`: a channel over a ConsulWatcher whose `filter_expr` makes Consul
itself leave every other version out of the answer (client-side meta matching is the comparison the lesson
makes, not the answer). The checker runs the expression against Consul, then counts who serves 100 calls.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

import consul
import grpc

from lab_services.core.addresses import consul_http_address
from lab_services.discovery import ConsulWatcher, PickerChannel
from lab_services.lessons.exercises.verdict import Verdict
from lab_services.service import user_pb2, user_pb2_grpc

NAME = "03-v2-filter"


def check(make_channel: Callable[[str], Any], consul_http: str, calls: int = 100) -> Verdict:
    """03-v2-filter: `make_channel(consul_http)` returns a PickerChannel whose ConsulWatcher has Consul filter to
    `version == v2`."""
    host, port = consul_http_address(consul_http)
    client = consul.Consul(host=host, port=port)
    try:
        versions = {
            e["Service"]["ID"]: e["Service"]["Meta"].get("version")
            for e in client.health.service("user", passing=True)[1]
        }
        v2 = sorted(i for i, v in versions.items() if v == "v2")
        if not v2:
            return Verdict(
                NAME,
                False,
                "no passing v2 instance of 'user'; add one with cluster.add_service(version='v2') and try again",
            )
        if not callable(make_channel):
            return Verdict(NAME, False, "define v2_channel(consul_http) and pass it to the checker")
        channel = make_channel(consul_http)
        watcher = getattr(channel, "watcher", None)
        if not isinstance(channel, PickerChannel) or not isinstance(watcher, ConsulWatcher):
            return Verdict(
                NAME,
                False,
                f"v2_channel returned {channel!r}; return lab.PickerChannel(lab.ConsulWatcher(...).start())",
            )
        try:
            return _judge(channel, watcher, client, versions, v2, calls)
        finally:
            channel.close()
            watcher.stop()
    finally:
        client.http.session.close()


def _judge(
    channel: PickerChannel,
    watcher: ConsulWatcher,
    client: consul.Consul,
    versions: dict[str, str | None],
    v2: list[str],
    calls: int,
) -> Verdict:
    expr = watcher.filter_expr
    if not expr:
        how = f"it matches meta={watcher.meta} in the client" if watcher.meta else "it asks for every instance"
        return Verdict(
            NAME,
            False,
            f"your watcher has no filter_expr, so Consul sends it every version ({how}); "
            "pass filter_expr='Service.Meta.version == \"v2\"'",
        )
    try:
        filtered = sorted(e["Service"]["ID"] for e in client.health.service("user", passing=True, filter_expr=expr)[1])
    except consul.ConsulException as err:
        return Verdict(NAME, False, f"Consul refused the filter {expr!r}: {err}")
    if filtered != v2:
        return Verdict(NAME, False, f"Consul's answer to filter {expr!r} is {filtered}, but the v2 instances are {v2}")
    if not watcher.wait_for(lambda xs: sorted(i.id for i in xs) == v2, 10):
        return Verdict(
            NAME,
            False,
            f"the watcher lists {sorted(i.id for i in watcher.instances())}, not the v2 instances {v2}; "
            "did you start() it?",
        )
    stub = user_pb2_grpc.UserServiceStub(channel)
    tag = f"{time.time_ns():x}"
    try:
        counts = collections.Counter(
            stub.CreateUser(
                user_pb2.CreateUserRequest(name=f"v2 {n}", email=f"v2-{tag}-{n}@example.com"), timeout=5
            ).served_by
            for n in range(calls)
        )
    except grpc.RpcError as err:
        return Verdict(NAME, False, f"a call through your channel failed: {err.code().name}: {err.details()}")
    elsewhere = {who: n for who, n in counts.items() if versions.get(who) != "v2"}
    if elsewhere:
        return Verdict(
            NAME, False, f"{sum(elsewhere.values())} of {calls} calls were served by non-v2 instances {elsewhere}"
        )
    return Verdict(
        NAME, True, f"Consul's filter {expr!r} left only {v2}, and all {calls} calls went there: {dict(counts)}"
    )


def v2_channel(consul_http: str) -> PickerChannel:
    """A channel to the v2 instances only: Consul evaluates the filter, so v1 instances never reach this client."""
    watcher = ConsulWatcher("user", consul_http, filter_expr='Service.Meta.version == "v2"').start()
    return PickerChannel(watcher, policy="round_robin")


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "`lab.ConsulWatcher` takes `filter_expr=`, an expression in Consul's filter language that the server "
        "evaluates over each health entry before it answers. The version is in the service's meta."
    ),
    (
        'The expression is `Service.Meta.version == "v2"`. Start the watcher (`.start()`) and wrap it: '
        "`lab.PickerChannel(watcher)`."
    ),
)

SOLUTION = v2_channel
