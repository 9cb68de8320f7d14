"""Lesson 08's exercise: CreateUser calls per second per instance in PromQL.

The checker says right or wrong and why; `my_query` is one solution."""

from __future__ import annotations

import time
from typing import Any

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
                f'count only grpc_method="CreateUser" of job {prometheus.CONSUL_JOB} (each instance is scraped '
                f"twice, once per discovery path), over [{window}]",
            )
    return Verdict(
        name,
        True,
        f"{len(expected)} instances, CreateUser rates "
        + ", ".join(f"{k}={v:.1f}/s" for k, v in sorted(expected.items())),
    )


def my_query() -> str:
    """CreateUser calls per second per instance, from the Consul-discovered job only (each instance is scraped
    twice)."""
    return 'sum by (instance) (rate(grpc_server_handled_total{job="lab-services",grpc_method="CreateUser"}[30s]))'


SOLUTION = my_query
