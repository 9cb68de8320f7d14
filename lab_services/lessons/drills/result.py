"""What a drill saw: a timeline of events in seconds since the fault, a summary, and a plot of both."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from lab_services.core.table import Table


@dataclass
class DrillResult:
    """What a drill saw: `timeline` of {"t", "event"} in order, `summary` of named seconds and counts, `params` used."""

    drill: str
    params: dict[str, Any]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def events(self) -> list[str]:
        return [e["event"] for e in self.timeline]

    def at(self, text: str) -> float | None:
        """The time of the first event whose text contains `text`, or None."""
        return next((e["t"] for e in self.timeline if text in e["event"]), None)

    def table(self) -> Table:
        return Table(self.timeline, ["t", "event"])

    def to_json(self) -> str:
        return json.dumps(
            {"drill": self.drill, "params": self.params, "timeline": self.timeline, "summary": self.summary}
        )

    def plot(self, ax=None):
        """Each event as a labelled dot on a line of seconds since the fault. Returns the Figure."""
        import matplotlib.pyplot as plt  # only lessons that plot pay for matplotlib

        if ax is None:
            fig, ax = plt.subplots(figsize=(9, 0.32 * max(4, len(self.timeline)) + 1))
        else:
            fig = ax.figure
        rows = list(reversed(self.timeline))
        for y, event in enumerate(rows):
            recovery = event["t"] >= (self.summary.get("recovery_started") or float("inf"))
            ax.scatter(event["t"], y, color="#1a7f37" if recovery else "#cf222e", s=40, zorder=3)
            ax.annotate(f"  {event['event']} ({event['t']:.2f} s)", (event["t"], y), va="center", fontsize=8)
        ax.axvline(0, color="#57606a", linestyle="--")
        ax.set_yticks([])
        ax.set_ylim(-1, len(rows))
        right = max((e["t"] for e in self.timeline), default=1.0)
        ax.set_xlim(min(-0.5, -0.05 * right), right * 1.6 + 1)
        ax.set_xlabel("seconds since the fault")
        ax.set_title(f"drill {self.drill}")
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        return fig

    def _repr_html_(self) -> str:
        return f"<p><b>drill {self.drill}</b> {self.params}</p>" + self.table()._repr_html_()


class Stopwatch:
    """Records events from any thread as seconds since the fault; events before the fault are not kept."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.wall0: float | None = None
        self.entries: list[tuple[float, int, str]] = []
        self.firsts: dict[str, float] = {}
        self._lock = threading.Lock()

    def fault(self, text: str) -> None:
        with self._lock:
            self.t0, self.wall0 = time.monotonic(), time.time()
            self.entries.append((0.0, 0, text))

    def mark(
        self, text: str, at: float | None = None, key: str | None = None, wall: float | None = None
    ) -> float | None:
        """Record `text` now (or at monotonic `at`, or wall-clock `wall`); with `key`, only its first occurrence."""
        with self._lock:
            if self.t0 is None:
                return None
            if key is not None and key in self.firsts:
                return self.firsts[key]
            t = wall - self.wall0 if wall is not None else (time.monotonic() if at is None else at) - self.t0
            t = max(t, 0.0)
            self.entries.append((t, len(self.entries), text))
            if key is not None:
                self.firsts[key] = t
            return t

    def since(self) -> float:
        return time.monotonic() - (self.t0 or time.monotonic())

    def first(self, key: str) -> float | None:
        """Seconds since the fault of the first event recorded under `key`, rounded as the timeline is."""
        return round(self.firsts[key], 3) if key in self.firsts else None

    def timeline(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"t": round(t, 3), "event": text} for t, _, text in sorted(self.entries)]
