"""Lesson 08's exercise: CreateUser calls per second per instance in PromQL.

The checker says right or wrong and why; `my_query` is one solution."""

from __future__ import annotations

import time
from typing import Any

from lab_services.core.durations import parse_duration
from lab_services.lessons.exercises.verdict import Verdict
from lab_services.metrics import prometheus

NAME = "08-promql"


def check(promql: Any, url: str, window: str = "30s") -> Verdict:
    """08-promql: `promql` gives CreateUser calls per second per instance, as Prometheus finds them through Consul."""
    name = NAME
    if not isinstance(promql, str) or not promql.strip():
        return Verdict(name, False, "set `my_query` to a PromQL string, e.g. 'sum by (instance) (rate(...[30s]))'")
    try:
        at = time.time()
        theirs = prometheus.query(url, promql, at=at)
    except prometheus.PrometheusError as err:
        return Verdict(name, False, f"Prometheus refused it: {err}")
    reference = (
        f'sum by (instance) (rate(grpc_server_handled_total{{job="{prometheus.CONSUL_JOB}",'
        f'grpc_method="CreateUser"}}[{window}]))'
    )
    expected = {s.labels.get("instance"): s.value for s in prometheus.query(url, reference, at=at)}
    got = {s.labels.get("instance"): s.value for s in theirs}
    if not expected:
        return Verdict(
            name,
            False,
            f"Prometheus has recorded no CreateUser calls of job {prometheus.CONSUL_JOB} in the last {window}, so "
            "there is nothing to compare your query with: run the load cell above, wait for two scrapes, check again",
        )
    if not got:
        return Verdict(
            name,
            False,
            "your query returned no series at all: a metric name or label value matches nothing; the counter is "
            'grpc_server_handled_total, with labels job="lab-services" and grpc_method="CreateUser"',
        )
    if set(got) != set(expected):
        extra = sorted({k for s in theirs for k in s.labels} - {"instance"})
        hint = f" (your series also carry {extra}: sum them away with `sum by (instance)`)" if extra else ""
        return Verdict(
            name, False, f"expected one series per instance {sorted(expected)}, got {sorted(map(str, got))}{hint}"
        )
    for instance, value in expected.items():
        if abs(got[instance] - value) > max(0.05 * value, 0.01):
            return Verdict(
                name,
                False,
                f"{instance}: your query says {got[instance]:.2f}/s, CreateUser calls are {value:.2f}/s; "
                + _why_off(got[instance] / value if value else float("inf"), window),
            )
    return Verdict(
        name,
        True,
        f"{len(expected)} instances, CreateUser rates "
        + ", ".join(f"{k}={v:.1f}/s" for k, v in sorted(expected.items())),
    )


def _why_off(ratio: float, window: str) -> str:
    """The likely mistake behind a rate `ratio` times the true one."""
    seconds = parse_duration(window)
    if abs(ratio - seconds) < 0.1 * seconds:
        return f"that is calls per {window}, not per second: take rate(...[{window}]), not increase(...)"
    if abs(ratio - 2) < 0.2:
        return (
            f"every call counts twice: each instance is scraped by two jobs (one per discovery path), so keep only "
            f'job="{prometheus.CONSUL_JOB}"'
        )
    return f'count only grpc_method="CreateUser" of job {prometheus.CONSUL_JOB}, as a rate over [{window}]'


def my_query() -> str:
    """CreateUser calls per second per instance, from the Consul-discovered job only (each instance is scraped
    twice)."""
    return 'sum by (instance) (rate(grpc_server_handled_total{job="lab-services",grpc_method="CreateUser"}[30s]))'


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "The counter is `grpc_server_handled_total`, labelled by `grpc_method` and `job`; `rate(...[30s])` "
        "turns it into calls per second. Prometheus scrapes every instance twice, once per job: keep one job."
    ),
    (
        'Select `{job="lab-services", grpc_method="CreateUser"}`, take `rate(...[30s])`, then `sum by '
        "(instance) (...)` to add up the status codes and keep only the instance label."
    ),
)

SOLUTION = my_query
