"""Lesson 03's policy comparison under real, uneven load: several calls in flight, one instance slowed down.

With one caller making one call at a time nothing is ever in flight, so least-outstanding and power-of-two
choices cannot differ from random. Here `in_flight` workers call at once through one PickerChannel per policy;
a slow instance then holds its calls longer, and the load-aware policies send it less.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc

from lab_services.core.table import Table
from lab_services.discovery import PickerChannel
from lab_services.discovery.policies import POLICIES
from lab_services.discovery.watcher import Watcher
from lab_services.service import user_pb2, user_pb2_grpc


def policy_split(
    watcher: Watcher,
    policies: tuple[str, ...] = ("round_robin", "weighted", "least_outstanding", "p2c"),
    calls: int = 300,
    in_flight: int = 8,
    say: Callable[[str], None] = print,
) -> Table:
    """For each policy, make `calls` CreateUser calls with `in_flight` at once and tabulate each instance's share (%).

    `say` gets one progress line per policy (a notebook prints it); Ctrl-C stops after the calls in flight finish.
    """
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise ValueError(f"invalid argument: policies: {unknown} unknown; use {', '.join(POLICIES)}")
    if calls < 1 or in_flight < 1:
        raise ValueError(f"invalid argument: calls ({calls}) and in_flight ({in_flight}) must be at least 1")
    ids = sorted(i.id for i in watcher.instances())
    rows = []
    for n, policy in enumerate(policies, 1):
        started = time.monotonic()
        counts = _drive(watcher, policy, calls, in_flight)
        say(f"[{n}/{len(policies)}] {policy}: {sum(counts.values())} calls in {time.monotonic() - started:.1f} s")
        total = sum(counts.values()) or 1
        rows.append(
            {
                "policy": policy,
                **{i: round(100 * counts.get(i, 0) / total, 1) for i in ids},
                "failed": counts.get("(failed)", 0),
            }
        )
    return Table(rows, ["policy", *ids, "failed"])


def _drive(watcher: Watcher, policy: str, calls: int, in_flight: int) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    lock = threading.Lock()
    run = f"{time.time_ns():x}"
    with PickerChannel(watcher, policy=policy) as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)

        def one(n: int) -> None:
            request = user_pb2.CreateUserRequest(name=f"race {n}", email=f"race-{run}-{n}@example.com")
            try:
                served = stub.CreateUser(request, timeout=10).served_by
            except grpc.RpcError:
                served = "(failed)"
            with lock:
                counts[served] += 1

        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix=f"race-{policy}") as pool:
            list(pool.map(one, range(calls)))
    return counts
