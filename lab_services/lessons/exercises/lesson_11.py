"""Lesson 11's exercise: a keepalive contract. Client channel options that notice a hung (SIGSTOPped) instance within
3 s without any call deadline, and the server ping policy that lets those pings through, so a quiet, healthy stream
is never thrown off with a `too_many_pings` GOAWAY.

The checker starts its own instance of the user service with the learner's server options, opens a WatchUsers stream
with the learner's channel options, leaves it quiet for 8 s (a default server ends it after about 4.5 s when pinged
every 0.5 s: lesson 11 §3), then pauses the instance and times how long until the stream fails.
"""

from __future__ import annotations

from typing import Any

from lab_services.lessons.connections import PingPolicyInstance, watch_through_pause
from lab_services.lessons.exercises.verdict import Verdict
from lab_services.runtime.cluster import Cluster

NAME = "11-hung-instance"
WITHIN_S = 3.0
QUIET_S = 8.0  # long enough for a default server's ping strikes to end the stream (4.5 s with pings every 0.5 s)
# A C-core server's defaults: one ping per 5 minutes while no data flows, none at all (2 h) with no call open.
DEFAULT_MIN_PING_MS = 300_000


def _options_problem(options: Any, which: str) -> str | None:
    if isinstance(options, list) and all(
        isinstance(o, tuple) and len(o) == 2 and isinstance(o[0], str) and isinstance(o[1], int) for o in options
    ):
        return None
    return (
        f"the {which} options should be a list of (option name, integer) tuples such as "
        f"[('grpc.keepalive_time_ms', 1000)], got {options!r}"
    )


def _goaway_advice(client: dict[str, int], server: dict[str, int]) -> str:
    """Why a server threw the pinging client off: which server option is missing or too high for the client."""
    pings = client["grpc.keepalive_time_ms"]
    allowed = server.get("grpc.http2.min_ping_interval_without_data_ms", DEFAULT_MIN_PING_MS)
    if allowed > pings:
        return (
            f"your client pings every {pings} ms, but the server accepts a ping only every {allowed} ms while no data "
            f"flows ({'your' if allowed != DEFAULT_MIN_PING_MS else 'the default'} "
            "grpc.http2.min_ping_interval_without_data_ms), and each earlier ping is a strike; after "
            "grpc.http2.max_ping_strikes (2) it sends GOAWAY too_many_pings. Set that server option below your "
            "keepalive time (pings arrive a little early or late)"
        )
    return (
        f"the server accepts a ping every {allowed} ms and your client pings every {pings} ms, which is too close: "
        "a ping that arrives a little early is a strike; leave room (e.g. half the keepalive time)"
    )


def check(client_options: Any, server_options: Any, cluster: Cluster) -> Verdict:
    """11-hung-instance: `client_options` make a channel notice a paused instance within 3 s, and `server_options`
    (the instance's ping policy) let those pings through on a quiet stream for 8 s without a GOAWAY."""
    for options, which in ((client_options, "client"), (server_options, "server")):
        problem = _options_problem(options, which)
        if problem:
            return Verdict(NAME, False, problem)
    client, server = dict(client_options), dict(server_options)
    if "grpc.keepalive_time_ms" not in client:
        return Verdict(
            NAME, False, "no grpc.keepalive_time_ms: without pings nothing notices a process that keeps its port open"
        )
    with PingPolicyInstance(cluster, server_options) as instance:
        result, thrown_off = watch_through_pause(
            instance.address, client_options, instance.pause, instance.resume, quiet=QUIET_S, window=WITHIN_S + 3
        )
    if thrown_off:
        return Verdict(
            NAME,
            False,
            f"the server ended your healthy, quiet stream before anything was paused: {thrown_off}. "
            + _goaway_advice(client, server),
        )
    took = result["stream ended after s"]
    if took is None:
        hint = "" if "grpc.http2.ping_timeout_ms" in client else " (how long may an unanswered ping wait? see §3)"
        return Verdict(
            NAME, False, f"the stream to the paused instance was still open after {result['window s']:g} s{hint}"
        )
    if took > WITHIN_S:
        return Verdict(
            NAME,
            False,
            f"the stream ended {took:.2f} s after the pause; the exercise asks for {WITHIN_S:g} s: ping more often, "
            "or wait less for an answer",
        )
    return Verdict(
        NAME,
        True,
        f"a quiet stream stayed open {QUIET_S:g} s with pings every {client['grpc.keepalive_time_ms']} ms and no "
        f"GOAWAY, and failed with {result['stream status']} {took:.2f} s after its instance was paused, "
        "no deadline needed",
    )


def hung_instance_options() -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(client options, server options). The client pings every half second, even without calls, and gives up on a
    connection whose ping is unanswered for half a second: about 1 s to notice a hang.

    The server must agree: by default it accepts one ping per 5 minutes while a call is open but quiet, and one per
    2 hours with no call at all; more earns strikes and a GOAWAY `too_many_pings`. So it accepts a ping every 250 ms
    (half the client's interval, since pings arrive a little early or late) with or without calls.
    """
    client = [
        ("grpc.keepalive_time_ms", 500),
        ("grpc.keepalive_timeout_ms", 500),
        ("grpc.http2.ping_timeout_ms", 500),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    server = [
        ("grpc.http2.min_ping_interval_without_data_ms", 250),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    return client, server


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "Two sides sign this contract. The client: only an unanswered HTTP/2 ping notices a paused peer, so ping "
        "often (`grpc.keepalive_time_ms`) and wait briefly for the answer (`grpc.keepalive_timeout_ms`, and the "
        "internal `grpc.http2.ping_timeout_ms`). The server: §3 showed what it does to a client that pings too often."
    ),
    (
        "Client: keepalive_time_ms 500, keepalive_timeout_ms 500, http2.ping_timeout_ms 500, "
        "keepalive_permit_without_calls 1, http2.max_pings_without_data 0. Server: "
        "`grpc.http2.min_ping_interval_without_data_ms` well below 500 (say 250) and "
        "`grpc.keepalive_permit_without_calls` 1."
    ),
)

SOLUTION = hung_instance_options
