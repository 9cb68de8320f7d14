"""Watcher events on a stopwatch: wait for one, list them as a table, plot them, seconds since a chosen start.

t0 = time.time()
cluster.kill("user-3")
removed = wait_event(watcher, "removed", "user-3", since=t0)      # the DiscoveryEvent, or TimeoutError
print(f"the client knew {removed.at - t0:.2f} s after the kill")
timeline_table(watcher.events, since=t0)                          # t, source, kind, instance, address
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from lab_services.core.table import Table
from lab_services.discovery.instance import DiscoveryEvent
from lab_services.discovery.watcher import Watcher

# One colour per kind of event, shared by the plot and anything else that draws a timeline.
KIND_COLOURS = {"added": "#1a7f37", "changed": "#9a6700", "removed": "#cf222e"}


def _select(events: Iterable[DiscoveryEvent], since: float | None) -> list[DiscoveryEvent]:
    events = sorted(events, key=lambda e: e.at)
    return [e for e in events if since is None or e.at >= since]


def timeline_rows(events: Iterable[DiscoveryEvent], since: float | None = None) -> list[dict]:
    """One dict per event at or after `since` (a time.time(); default: the first event), oldest first."""
    events = _select(events, since)
    start = since if since is not None else (events[0].at if events else 0.0)
    return [
        {
            "t": round(e.at - start, 3),
            "source": e.source,
            "kind": e.kind,
            "instance": e.instance.id,
            "address": e.instance.address,
            "version": e.instance.meta.get("version", ""),
        }
        for e in events
    ]


def timeline_table(events: Iterable[DiscoveryEvent], since: float | None = None) -> Table:
    """The events as a table, `t` in seconds since `since` (or since the first event)."""
    return Table(timeline_rows(events, since), ["t", "source", "kind", "instance", "address", "version"])


def plot_timeline(
    events: Iterable[DiscoveryEvent], since: float | None = None, marks: dict[str, float] | None = None, ax=None
):
    """A dot per event: x is seconds since `since`, one row per instance, coloured by kind.

    `marks` draws labelled vertical lines, e.g. {"kill": t_kill} with times as time.time(). Returns the figure.
    """
    import matplotlib.pyplot as plt  # imported here: only lessons that plot pay for matplotlib

    events = _select(events, since)
    rows = timeline_rows(events, since)
    start = since if since is not None else (events[0].at if events else 0.0)
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 0.4 * max(3, len({r["instance"] for r in rows})) + 1))
    else:
        fig = ax.figure
    lanes = sorted({f"{r['source']}:{r['instance']}" for r in rows})
    for row in rows:
        lane = lanes.index(f"{row['source']}:{row['instance']}")
        ax.scatter(row["t"], lane, color=KIND_COLOURS.get(row["kind"], "#000"), s=60, zorder=3)
    for kind, colour in KIND_COLOURS.items():
        ax.scatter([], [], color=colour, label=kind)
    for label, at in (marks or {}).items():
        ax.axvline(at - start, color="#57606a", linestyle="--")
        ax.annotate(
            label, (at - start, len(lanes) - 0.5 if lanes else 0.5), rotation=90, va="top", ha="right", fontsize=8
        )
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_ylim(-0.5, max(len(lanes), 1) - 0.5)
    ax.set_xlabel("seconds")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def find_event(
    events: Iterable[DiscoveryEvent], kind: str, instance_id: str, since: float | None = None
) -> DiscoveryEvent | None:
    """The first `kind` event of `instance_id` at or after `since`, or None."""
    return next((e for e in _select(events, since) if e.kind == kind and e.instance.id == instance_id), None)


def wait_event(watcher: Watcher, kind: str, instance_id: str, since: float, timeout: float = 15.0) -> DiscoveryEvent:
    """Wait until `watcher` reports a `kind` event of `instance_id` at or after `since` (a time.time()); returns it.

    Raises TimeoutError naming what the watcher knows if none arrives within `timeout` seconds.
    """
    arrived = threading.Event()
    unsubscribe = watcher.subscribe(
        lambda e: arrived.set() if e.kind == kind and e.instance.id == instance_id else None
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            found = find_event(watcher.events, kind, instance_id, since)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                known = ", ".join(i.id for i in watcher.instances()) or "none"
                raise TimeoutError(
                    f"{watcher.where} reported no {kind!r} event for {instance_id} within {timeout:g} s; "
                    f"it knows {known}"
                )
            arrived.wait(min(left, 0.2))
            arrived.clear()
    finally:
        unsubscribe()
