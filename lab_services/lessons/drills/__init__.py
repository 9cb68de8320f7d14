"""Failure drills: inject one fault into the running lab, time what notices and what recovers, and put everything back.

    result = run(cluster, "service-kill", check_interval="10s")
    result.timeline          # [{"t": 0.0, "event": "kill -9 user-drill"}, {"t": 4.213, "event": "Consul: ..."}, ...]
    result.summary           # {"seconds_to_critical": 4.213, "seconds_to_removed": 4.221, "client_errors": 0, ...}
    result.plot()            # a matplotlib Figure of the timeline
    print(result.to_json())

`t` is seconds since the fault. One module per drill family: `service` (a probe instance killed, stopped or
paused under load), `consul` and `etcd` (a real leader killed, or two etcd members). The server drills always
start what they killed again and wait for a leader before they return, also when something in between failed.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab_services.core.progress import OnStep
from lab_services.core.table import Table
from lab_services.lessons.drills.consul import consul_leader
from lab_services.lessons.drills.etcd import etcd_leader, etcd_quorum
from lab_services.lessons.drills.probe import Load, Probe
from lab_services.lessons.drills.result import DrillResult, Stopwatch
from lab_services.lessons.drills.service import ServiceDrillParams, service_kill, service_pause, service_term
from lab_services.runtime.cluster import Cluster

__all__ = [
    "DRILLS",
    "REMOVAL_TIMES",
    "Drill",
    "DrillResult",
    "Load",
    "Probe",
    "ServiceDrillParams",
    "Stopwatch",
    "consul_leader",
    "describe",
    "etcd_leader",
    "etcd_quorum",
    "removal_comparison",
    "removal_table",
    "run",
    "service_kill",
    "service_pause",
    "service_term",
]


@dataclass(frozen=True)
class Drill:
    name: str
    description: str
    run: Callable[..., DrillResult]


DRILLS: dict[str, Drill] = {
    d.name: d
    for d in (
        Drill(
            "service-kill",
            "kill -9 an instance under load: check critical, removed from the passing set, clients move, restart",
            service_kill,
        ),
        Drill(
            "service-term",
            "SIGTERM an instance under load: it deregisters first, so clients see no errors",
            service_term,
        ),
        Drill(
            "service-pause",
            "SIGSTOP an instance under load: only timeouts notice until its check times out; then SIGCONT",
            service_pause,
        ),
        Drill(
            "consul-leader",
            "kill -9 the Consul leader: time to a new leader, registrations and KV survive, restart it",
            consul_leader,
        ),
        Drill(
            "etcd-leader", "kill -9 the etcd leader: new leader, leases and watches carry on, restart it", etcd_leader
        ),
        Drill(
            "etcd-quorum", "kill 2 of 3 etcd members: writes fail without quorum, succeed once one is back", etcd_quorum
        ),
    )
}


def run(cluster: Cluster, name: str, progress: OnStep | None = None, **params: Any) -> DrillResult:
    """Run the drill `name` (see DRILLS) against `cluster` with its parameters, e.g. check_interval="10s".

    `progress(done, total, step)` hears each phase of a service drill (probe up, fault, noticed, recovered), and the
    start and end of a server drill. An interrupt (Ctrl-C) is not caught: every drill puts back what it disturbed in
    a `finally` before it lets the interrupt through."""
    if name not in DRILLS:
        raise ValueError(f"invalid argument: drill: {name!r}; use one of {', '.join(DRILLS)}")
    if name.startswith("service-"):
        return DRILLS[name].run(cluster, progress=progress, **params)
    if progress is not None:
        progress(0, 1, f"{name}: running (the drill restarts what it kills)")
    result = DRILLS[name].run(cluster, **params)
    if progress is not None:
        progress(1, 1, f"{name}: done")
    return result


def describe() -> Table:
    """The drills and what each does, for a notebook."""
    return Table([{"drill": d.name, "what it does": d.description} for d in DRILLS.values()], ["drill", "what it does"])


# What `removal_comparison` measures for each check setting, in the order its table shows them.
REMOVAL_TIMES = [
    "runs",
    "median_seconds_to_removed",
    "min_seconds_to_removed",
    "max_seconds_to_removed",
    "fired_first",
    "samples",
]


def removal_comparison(
    cluster: Cluster,
    settings: dict[str, dict[str, Any]],
    repeats: int = 1,
    drill: str = "service-kill",
    progress: OnStep | None = None,
) -> Table:
    """Run a service drill (without recovery) `repeats` times per named check setting and tabulate the removal times.

        removal_comparison(cluster, {"default 10s": {"check_interval": "10s"}, "tuned 3s": {"check_interval": "3s"}})

    With drill="service-pause" the probe hangs instead of dying, so the check has to time out as well. One sample
    per setting says little (a fault lands at a random point of the check's cycle), so each row gives the median and
    the range, and `fired_first` counts which check (grpc or ttl) turned critical first in each run.
    `progress(done, total, step)` is told before each run (a notebook's bar, the CLI's stderr line).
    """
    if drill not in ("service-kill", "service-pause"):
        raise ValueError(f"invalid argument: drill: {drill!r}; compare with service-kill or service-pause")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"invalid argument: repeats: {repeats!r}; a whole number of runs per setting, 1 or more")
    rows, total = [], repeats * len(settings)
    for label, params in settings.items():
        removed: list[float] = []
        first: Counter[str] = Counter()
        for n in range(repeats):
            if progress is not None:
                progress(len(rows) * repeats + n, total, f"{drill} {label}: run {n + 1} of {repeats}")
            summary = DRILLS[drill].run(cluster, recover=False, **params).summary
            removed.append(summary["seconds_to_removed"])
            first.update({"+".join(c.rsplit(":", 1)[-1] for c in summary["first_critical"]) or "?"})
        rows.append(
            {
                "setting": label,
                "drill": drill,
                **params,
                "runs": repeats,
                "median_seconds_to_removed": round(statistics.median(removed), 2),
                "min_seconds_to_removed": round(min(removed), 2),
                "max_seconds_to_removed": round(max(removed), 2),
                "fired_first": dict(first),
                "samples": [round(r, 2) for r in removed],
            }
        )
    if progress is not None:
        progress(total, total, f"{drill}: done")
    return Table(rows, ["setting", "drill", *sorted({k for p in settings.values() for k in p}), *REMOVAL_TIMES])


def removal_table(*comparisons: Table) -> Table:
    """The rows of several `removal_comparison` tables (e.g. the kills, then the hangs) as one table of the
    removal times, leaving out the check settings each row was run with (its `setting` label names them)."""
    return Table([row for comparison in comparisons for row in comparison], ["setting", "drill", *REMOVAL_TIMES])
