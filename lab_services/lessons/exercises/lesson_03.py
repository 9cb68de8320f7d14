"""Lesson 03's exercise: a channel that sends a share of calls to the v2 canary. The checker says right or wrong and why; `canary_channel` is one solution."""
from __future__ import annotations

import collections
import time
from typing import Any, Callable

import grpc

from lab_services.discovery import CanarySplit, PickerChannel
from lab_services.lessons.exercises.verdict import Verdict
from lab_services.service import user_pb2, user_pb2_grpc

NAME = "03-canary"


def check(make_channel: Callable[..., Any], watcher: Any, share: float = 0.1, calls: int = 500) -> Verdict:
    """03-canary: `make_channel(watcher, share)` returns a channel sending `share` of calls to v2 instances, the rest to v1."""
    name = NAME
    versions = {i.id: i.meta.get("version") for i in watcher.instances()}
    if "v2" not in versions.values():
        return Verdict(name, False, "the watcher lists no v2 instance; add one with cluster.add_service(version='v2') and try again")
    channel = make_channel(watcher, share)
    if channel is None or not hasattr(channel, "unary_unary"):
        return Verdict(name, False, f"your function returned {channel!r}; return a channel, e.g. a PickerChannel over the watcher")
    try:
        stub = user_pb2_grpc.UserServiceStub(channel)
        tag = f"{time.time_ns():x}"
        counts = collections.Counter(
            stub.CreateUser(user_pb2.CreateUserRequest(name=f"canary {n}", email=f"canary-{tag}-{n}@example.com"), timeout=5).served_by
            for n in range(calls)
        )
    except grpc.RpcError as err:
        return Verdict(name, False, f"a call through your channel failed: {err.code().name}: {err.details()}")
    finally:
        channel.close()
    versions = {i.id: i.meta.get("version") for i in watcher.instances()}
    to_v2 = sum(n for who, n in counts.items() if versions.get(who) == "v2") / calls
    strays = sorted(who for who in counts if versions.get(who) not in ("v1", "v2"))
    if strays:
        return Verdict(name, False, f"calls went to {strays}, which are neither v1 nor v2")
    # Within about 3.5 standard deviations; plain round robin over three v1 and one v2 (25%) falls outside.
    if abs(to_v2 - share) > 0.05:
        return Verdict(name, False, f"{to_v2:.0%} of {calls} calls went to v2, expected about {share:.0%}; "
                       "a CanarySplit policy with canary_share=share does this")
    return Verdict(name, True, f"{to_v2:.0%} of {calls} calls went to the v2 canary (asked {share:.0%}), the rest to v1: {dict(counts)}")


def canary_channel(watcher: Any, share: float) -> PickerChannel:
    """A channel that sends `share` of the calls to v2 instances and the rest to v1."""
    policy = CanarySplit(stable_meta={"version": "v1"}, canary_meta={"version": "v2"}, canary_share=share)
    return PickerChannel(watcher, policy=policy)


SOLUTION = canary_channel
