"""Lesson 08's wait for Prometheus: until every instance shows a call rate, latencies, and the flaky one its errors."""
from __future__ import annotations

from lab_services.core.wait import wait_until
from lab_services.metrics import prometheus


def wait_for_rates(url: str, instances: int, flaky: str | None = None, timeout: float = 30.0) -> float:
    """Seconds until Prometheus at `url` has a CreateUser rate for `instances` instances, CreateUser latencies and,
    with `flaky`, an error ratio above 0 for that instance; WaitTimeout saying what it saw otherwise."""

    def ready() -> bool:
        busy = len([v for v in prometheus.calls_per_second(url).values() if v > 0]) >= instances
        errors = flaky is None or prometheus.error_ratio(url).get(flaky, 0) > 0
        return busy and "CreateUser" in prometheus.latency_quantiles(url) and errors

    return wait_until(ready, timeout, f"Prometheus to show {instances} instances' call rates, latencies"
                      + (f" and {flaky}'s errors" if flaky else ""), interval=1,
                      seen=lambda: f"rates {prometheus.calls_per_second(url)}, error ratios {prometheus.error_ratio(url)}")
