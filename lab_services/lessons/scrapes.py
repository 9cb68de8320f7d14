"""Lesson 08's helpers: wait until every instance shows a call rate, latencies, and the flaky one its errors; and
say which of an instance's metrics follow go-grpc-prometheus and which are the lab's own."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from lab_services.core.table import Table
from lab_services.core.wait import wait_until
from lab_services.metrics import prometheus


def wait_for_rates(url: str, instances: int, flaky: str | None = None, timeout: float = 30.0) -> float:
    """Seconds until Prometheus at `url` has a CreateUser rate for `instances` instances, CreateUser latencies and,
    with `flaky`, an error ratio above 0 for that instance; WaitTimeout saying what it saw otherwise."""

    def ready() -> bool:
        busy = len([v for v in prometheus.calls_per_second(url).values() if v > 0]) >= instances
        errors = flaky is None or prometheus.error_ratio(url).get(flaky, 0) > 0
        return busy and "CreateUser" in prometheus.latency_quantiles(url) and errors

    return wait_until(
        ready,
        timeout,
        f"Prometheus to show {instances} instances' call rates, latencies"
        + (f" and {flaky}'s errors" if flaky else ""),
        interval=1,
        seen=lambda: f"rates {prometheus.calls_per_second(url)}, error ratios {prometheus.error_ratio(url)}",
    )


# What go-grpc-prometheus (github.com/grpc-ecosystem/go-grpc-prometheus, server side) exports, and its labels.
# It has no in-flight gauge: there, calls in flight are grpc_server_started_total - grpc_server_handled_total.
GO_GRPC_PROMETHEUS = {
    "grpc_server_started_total": "counter",
    "grpc_server_handled_total": "counter",
    "grpc_server_msg_received_total": "counter",
    "grpc_server_msg_sent_total": "counter",
    "grpc_server_handling_seconds": "histogram",
}
GO_GRPC_PROMETHEUS_LABELS = {"grpc_type", "grpc_service", "grpc_method", "grpc_code"}


def metric_origins(exposition: str) -> Table:
    """For each gRPC metric family in a /metrics text: its type and labels, and whether go-grpc-prometheus has the
    same metric (and which of its labels the lab leaves out), or whether it is the lab's own. Labels are read from
    the samples, so scrape an instance that has served calls."""
    rows = []
    for family in text_string_to_metric_families(exposition):
        if not family.name.startswith("grpc_") or family.name.endswith("_created"):
            continue  # *_created are prometheus_client's creation timestamps, not metrics of the gRPC server
        name = f"{family.name}_total" if family.type == "counter" else family.name  # the parser drops _total
        labels = sorted({k for s in family.samples for k in s.labels} - {"le"})
        theirs = GO_GRPC_PROMETHEUS.get(name)
        if theirs == family.type:
            missing = sorted(
                GO_GRPC_PROMETHEUS_LABELS - set(labels) - ({"grpc_code"} if theirs == "histogram" else set())
            )
            origin = "go-grpc-prometheus" + (f" (without its label {', '.join(missing)})" if missing else "")
        else:
            origin = "the lab's own (go-grpc-prometheus has no such metric)"
        rows.append({"metric": name, "type": family.type, "labels": ", ".join(labels), "origin": origin})
    return Table(rows, ["metric", "type", "labels", "origin"])
