"""Lesson 03's blocking query, timed: park a Consul health query, change the answer, and see how soon it returns."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import consul

from lab_services.core.network import kernel_host


@dataclass(frozen=True)
class BlockingAnswer:
    """The index before and after the change, how long after the change the parked query came back, and what it
    listed."""

    index_before: str
    index_after: str
    ms: float
    ids: list[str]


def time_a_blocking_query(client: consul.Consul, service: str, park_for: float = 0.5) -> BlockingAnswer:
    """Park `?index=<current>&wait=10s` on `service`, register an instance of it, and time the answer.

    The instance has no checks, so it is passing at once; it is deregistered again before returning. A blocking
    query may also return for a change that is not ours (on a fresh agent, its own node sync moves the index), so the
    query parks again on the index it got, as a real watcher does, until the answer holds the new instance.
    """
    index_before, _ = client.health.service(service, passing=True)
    answer: dict = {}
    instance = f"{service}-1"

    def blocking_query() -> None:
        index, deadline = index_before, time.monotonic() + 10
        while time.monotonic() < deadline:
            index, entries = client.health.service(service, passing=True, index=index, wait="10s")
            if any(e["Service"]["ID"] == instance for e in entries):
                answer.update(index=index, entries=entries, at=time.monotonic())
                return

    parked = threading.Thread(target=blocking_query, name="blocking-query")
    parked.start()
    time.sleep(park_for)  # the query is now waiting inside Consul
    changed_at = time.monotonic()
    client.agent.service.register(service, service_id=instance, address=kernel_host(), port=9)
    try:
        parked.join(10)
    finally:
        client.agent.service.deregister(instance)
    if "at" not in answer:
        raise TimeoutError(f"the blocking query on {service} did not return within 10 s of the change")
    return BlockingAnswer(
        index_before,
        answer["index"],
        (answer["at"] - changed_at) * 1000,
        [e["Service"]["ID"] for e in answer["entries"]],
    )
