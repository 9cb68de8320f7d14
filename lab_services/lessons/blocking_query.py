"""Lesson 03's blocking query, timed: park a Consul health query, change the answer, and see how soon it returns."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import consul


@dataclass(frozen=True)
class BlockingAnswer:
    """The index before and after the change, how long after the change the parked query came back, and what it listed."""

    index_before: str
    index_after: str
    ms: float
    ids: list[str]


def time_a_blocking_query(client: consul.Consul, service: str, park_for: float = 0.5) -> BlockingAnswer:
    """Park `?index=<current>&wait=10s` on `service`, register an instance of it, and time the answer.

    The instance has no checks, so it is passing at once; it is deregistered again before returning.
    """
    index_before, _ = client.health.service(service, passing=True)
    answer: dict = {}

    def blocking_query() -> None:
        answer["index"], answer["entries"] = client.health.service(service, passing=True, index=index_before, wait="10s")
        answer["at"] = time.monotonic()

    parked = threading.Thread(target=blocking_query, name="blocking-query")
    parked.start()
    time.sleep(park_for)  # the query is now waiting inside Consul
    changed_at = time.monotonic()
    client.agent.service.register(service, service_id=f"{service}-1", address="127.0.0.1", port=9)
    try:
        parked.join(10)
    finally:
        client.agent.service.deregister(f"{service}-1")
    if "at" not in answer:
        raise TimeoutError(f"the blocking query on {service} did not return within 10 s of the change")
    return BlockingAnswer(index_before, answer["index"], (answer["at"] - changed_at) * 1000,
                          [e["Service"]["ID"] for e in answer["entries"]])
