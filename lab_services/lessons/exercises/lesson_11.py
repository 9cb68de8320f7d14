"""Lesson 11's exercise: channel options that notice a hung (SIGSTOPped) instance within 3 s, without any call deadline.

The checker opens a channel to a lab instance with the learner's options, opens a WatchUsers stream with no
deadline, pauses the instance and times how long until the stream fails; the instance is resumed whatever happens.
"""

from __future__ import annotations

from typing import Any

from lab_services.lessons.connections import detect_pause
from lab_services.lessons.exercises.verdict import Verdict
from lab_services.runtime.cluster import Cluster

NAME = "11-hung-instance"
WITHIN_S = 3.0


def check(options: Any, cluster: Cluster, instance: str = "user-1") -> Verdict:
    """11-hung-instance: `options` (a list of (name, value)) make a channel notice a paused instance within 3 s."""
    if not isinstance(options, list) or not all(
        isinstance(o, tuple) and len(o) == 2 and isinstance(o[0], str) for o in options
    ):
        return Verdict(
            NAME,
            False,
            "expected a list of (option name, value) tuples such as [('grpc.keepalive_time_ms', 1000)], "
            f"got {options!r}",
        )
    names = dict(options)
    if "grpc.keepalive_time_ms" not in names:
        return Verdict(
            NAME, False, "no grpc.keepalive_time_ms: without pings nothing notices a process that keeps its port open"
        )
    result = detect_pause(cluster, instance, options, window=WITHIN_S + 3)
    took = result["stream ended after s"]
    if took is None:
        hint = "" if "grpc.http2.ping_timeout_ms" in names else " (how long may an unanswered ping wait? see §3)"
        return Verdict(
            NAME, False, f"the stream to the paused {instance} was still open after {result['window s']:g} s{hint}"
        )
    if took > WITHIN_S:
        return Verdict(
            NAME, False, f"the stream ended {took:.2f} s after the pause; the exercise asks for {WITHIN_S:g} s"
        )
    return Verdict(
        NAME,
        True,
        f"the stream to the paused {instance} failed with {result['stream status']} after {took:.2f} s, "
        "no deadline needed",
    )


def hung_instance_options() -> list[tuple[str, int]]:
    """Ping every half second even without calls, and give up on a connection whose ping is unanswered for half a
    second.

    About 1 s to notice, so the answer holds with room to spare on a busy machine; 1 s and 1 s (about 2 s) also passes.
    """
    return [
        ("grpc.keepalive_time_ms", 500),
        ("grpc.keepalive_timeout_ms", 500),
        ("grpc.http2.ping_timeout_ms", 500),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "Only an unanswered HTTP/2 ping notices a paused peer: `grpc.keepalive_time_ms` says how often to "
        "ping (also without calls, with `grpc.keepalive_permit_without_calls`), and a ping timeout how long "
        "to wait for its answer."
    ),
    (
        "Ping every 500 ms (`grpc.keepalive_time_ms`), give up after 500 ms (`grpc.keepalive_timeout_ms` and "
        "`grpc.http2.ping_timeout_ms`), and allow pings without data (`grpc.http2.max_pings_without_data` 0)."
    ),
)

SOLUTION = hung_instance_options
