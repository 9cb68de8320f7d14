"""Ask the lab's Prometheus over its HTTP API: instant and range queries, targets, the lesson's named queries and plots.

    url = cluster.status().prometheus.url
    wait_for_targets(url, "lab-services", 3, timeout=15)
    calls_per_second(url)                       # {"user-1": 12.4, "user-2": 12.1, ...}
    latency_quantiles(url)                      # {"CreateUser": {0.5: 0.0004, 0.95: 0.0011, 0.99: 0.002}}
    query(url, 'up{job="lab-services"}')        # [Sample(labels={...}, value=1.0, at=...)]
    plot_rate(url, seconds=120)                 # a matplotlib Figure

Debian's Prometheus builds have no web UI (docs/architecture.md), so these functions are the lab's window on it.
Only the standard library talks to the server. Every service instance is scraped twice, once per discovery
path (job `lab-services` through Consul, `lab-services-etcd` through etcd), so the named queries select one
job, by default the Consul one, and never add the two.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from lab_services.core.errors import LabError

CONSUL_JOB = "lab-services"
ETCD_JOB = "lab-services-etcd"
# Prometheus scrapes every 2 s in the lab; a rate needs at least two samples, and five smooth it.
DEFAULT_WINDOW = "10s"
QUANTILES = (0.5, 0.95, 0.99)


class PrometheusError(LabError, RuntimeError):
    """Prometheus could not be reached, or refused the query; the message says which and why."""


@dataclass(frozen=True)
class Sample:
    """One value of an instant query: its labels, the value, and the time it is for (seconds since the epoch)."""

    labels: dict[str, str]
    value: float
    at: float


@dataclass
class Series:
    """One series of a range query: labels, and the times and values of its points."""

    labels: dict[str, str]
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """The points as rows {"t", "value", **labels}, for a Table."""
        return [{"t": t, "value": v, **self.labels} for t, v in zip(self.times, self.values, strict=True)]


# -- the HTTP API -------------------------------------------------------------------------------------


def api(url: str, path: str, params: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
    """GET `/api/v1/<path>` and return its `data`; PrometheusError with the server's own error text otherwise."""
    full = f"{url.rstrip('/')}/api/v1/{path}"
    if params:
        full += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(full, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as err:
        # A bad query comes back as 400 with {"status": "error", "errorType": ..., "error": ...}.
        try:
            body = json.loads(err.read())
        except ValueError:
            raise PrometheusError(f"prometheus at {url} answered HTTP {err.code} to {path}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise PrometheusError(
            f"prometheus at {url} unreachable ({reason}); is the lab up with Prometheus? "
            "`discovery-lab status` shows its URL"
        ) from None
    if body.get("status") != "success":
        raise PrometheusError(
            f"prometheus refused {params.get('query', path) if params else path!r}: "
            f"{body.get('errorType', 'error')}: {body.get('error', body)}"
        )
    return body["data"]


def _number(text: str) -> float:
    return float(text)  # Prometheus sends "NaN", "+Inf" and "-Inf" as strings, which float() reads


def query(url: str, promql: str, at: float | None = None) -> list[Sample]:
    """An instant query: one Sample per series (a scalar answer becomes one Sample without labels)."""
    params = {"query": promql} if at is None else {"query": promql, "time": at}
    data = api(url, "query", params)
    kind, result = data["resultType"], data["result"]
    if kind in ("scalar", "string"):
        return [Sample({}, _number(result[1]), float(result[0]))]
    if kind == "matrix":
        raise PrometheusError(
            f"{promql!r} is a range vector; wrap it in a function such as rate(...) or use query_range"
        )
    return [Sample(dict(r["metric"]), _number(r["value"][1]), float(r["value"][0])) for r in result]


def query_range(url: str, promql: str, start: float, end: float | None = None, step: float = 2.0) -> list[Series]:
    """A range query from `start` to `end` (seconds since the epoch; end defaults to now) every `step` seconds."""
    end = time.time() if end is None else end
    data = api(url, "query_range", {"query": promql, "start": start, "end": end, "step": step})
    return [
        Series(dict(r["metric"]), [float(t) for t, _ in r["values"]], [_number(v) for _, v in r["values"]])
        for r in data["result"]
    ]


def targets(url: str, job: str | None = None) -> list[dict[str, Any]]:
    """The active scrape targets (of one job, if given): job, instance, registry, address, health, last error."""
    found = []
    for target in api(url, "targets")["activeTargets"]:
        labels = target["labels"]
        if job is not None and labels.get("job") != job:
            continue
        found.append(
            {
                "job": labels.get("job"),
                "instance": labels.get("instance"),
                "registry": labels.get("registry", ""),
                "address": target["scrapeUrl"].split("/")[2],
                "health": target["health"],
                "last_error": target.get("lastError", ""),
            }
        )
    return sorted(found, key=lambda t: (t["job"] or "", t["instance"] or ""))


def wait_for_targets(url: str, job: str, count: int, timeout: float = 15.0) -> float:
    """Wait until `job` has at least `count` targets up; the seconds it took, or TimeoutError with what it saw."""
    start = time.monotonic()
    seen: list[dict[str, Any]] = []
    while True:
        try:
            seen = targets(url, job)
        except PrometheusError:
            if time.monotonic() - start > timeout:
                raise
            seen = []
        if sum(t["health"] == "up" for t in seen) >= count:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            state = ", ".join(f"{t['instance']}={t['health']}" for t in seen) or "no targets"
            raise TimeoutError(f"waited {timeout:.0f} s for {count} {job} targets up at {url}, saw {state}")
        time.sleep(0.2)


# -- the lesson's named queries -----------------------------------------------------------------------


def _selector(job: str, extra: str = "") -> str:
    return "{" + f'job="{job}"' + (f",{extra}" if extra else "") + "}"


def calls_per_second_query(window: str = DEFAULT_WINDOW, job: str = CONSUL_JOB) -> str:
    """PromQL: calls handled per second by each instance, averaged over `window`."""
    return f"sum by (instance) (rate(grpc_server_handled_total{_selector(job)}[{window}]))"


def latency_query(quantile: float, window: str = DEFAULT_WINDOW, job: str = CONSUL_JOB) -> str:
    """PromQL: the `quantile` of handling time per method, estimated from the histogram buckets of every instance."""
    return (
        f"histogram_quantile({quantile}, sum by (grpc_method, le) "
        f"(rate(grpc_server_handling_seconds_bucket{_selector(job)}[{window}])))"
    )


def error_ratio_query(window: str = DEFAULT_WINDOW, job: str = CONSUL_JOB) -> str:
    """PromQL: the share of calls that did not end OK, per instance."""
    not_ok = _selector(job, 'grpc_code!="OK"')
    failed = f"sum by (instance) (rate(grpc_server_handled_total{not_ok}[{window}]))"
    total = f"sum by (instance) (rate(grpc_server_handled_total{_selector(job)}[{window}]))"
    # `or` fills in 0 for instances with no failed calls at all (their failed series does not exist).
    return f"({failed} or {total} * 0) / {total}"


def calls_per_second(url: str, window: str = DEFAULT_WINDOW, job: str = CONSUL_JOB) -> dict[str, float]:
    """{instance: calls per second} now."""
    return {s.labels.get("instance", ""): s.value for s in query(url, calls_per_second_query(window, job))}


def latency_quantiles(
    url: str, quantiles: tuple[float, ...] = QUANTILES, window: str = DEFAULT_WINDOW, job: str = CONSUL_JOB
) -> dict[str, dict[float, float]]:
    """{method: {quantile: seconds}}; methods without calls in `window` are left out (their quantile is NaN)."""
    found: dict[str, dict[float, float]] = {}
    for q in quantiles:
        for sample in query(url, latency_query(q, window, job)):
            if not math.isnan(sample.value):
                found.setdefault(sample.labels.get("grpc_method", ""), {})[q] = sample.value
    return found


def error_ratio(url: str, window: str = DEFAULT_WINDOW, job: str = CONSUL_JOB) -> dict[str, float]:
    """{instance: failed calls / all calls} over `window`; instances without calls are left out."""
    return {
        s.labels.get("instance", ""): s.value
        for s in query(url, error_ratio_query(window, job))
        if not math.isnan(s.value)
    }


# -- plots --------------------------------------------------------------------------------------------


def _plot_series(
    series: list[Series], label_of, title: str, ylabel: str, ax=None, marks: dict[str, float] | None = None
):
    import matplotlib.pyplot as plt  # only lessons that plot pay for matplotlib

    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 3.2))
    else:
        fig = ax.figure
    now = time.time()
    for s in sorted(series, key=label_of):
        ax.plot([t - now for t in s.times], s.values, label=label_of(s), marker=".", markersize=3)
    for label, at in (marks or {}).items():
        ax.axvline(at - now, color="#57606a", linestyle="--")
        ax.annotate(label, (at - now, ax.get_ylim()[1]), rotation=90, va="top", ha="right", fontsize=8)
    ax.set_title(title)
    ax.set_xlabel("seconds before now")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_rate(
    url: str,
    seconds: float = 120,
    step: float = 2.0,
    window: str = DEFAULT_WINDOW,
    job: str = CONSUL_JOB,
    ax=None,
    marks: dict[str, float] | None = None,
):
    """Calls per second per instance over the last `seconds`; `marks` ({"kill": time.time()}) draws events. A Figure."""
    series = query_range(url, calls_per_second_query(window, job), time.time() - seconds, step=step)
    return _plot_series(
        series, lambda s: s.labels.get("instance", ""), f"calls per second per instance ({job})", "calls/s", ax, marks
    )


def plot_latency(
    url: str,
    seconds: float = 120,
    method: str | None = None,
    quantiles: tuple[float, ...] = QUANTILES,
    step: float = 2.0,
    window: str = DEFAULT_WINDOW,
    job: str = CONSUL_JOB,
    ax=None,
    marks: dict[str, float] | None = None,
):
    """p50/p95/p99 handling time in milliseconds over the last `seconds`, one line per quantile and method. A Figure."""
    series = []
    for q in quantiles:
        for s in query_range(url, latency_query(q, window, job), time.time() - seconds, step=step):
            if method is None or s.labels.get("grpc_method") == method:
                s.labels["quantile"] = f"p{q * 100:g}"
                series.append(Series(s.labels, s.times, [v * 1000 for v in s.values]))
    return _plot_series(
        series,
        lambda s: f"{s.labels.get('grpc_method', '')} {s.labels['quantile']}",
        f"handling time per method ({job})",
        "milliseconds",
        ax,
        marks,
    )
