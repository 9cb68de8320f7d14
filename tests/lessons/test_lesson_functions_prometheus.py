"""Lesson 08's live plots: redrawn until the time is up, with the instance killed once, half way, and marked."""

from __future__ import annotations

import time

from lab_services.lessons import live_plots


class _Cluster:
    def __init__(self) -> None:
        self.killed: list[tuple[str, float]] = []

    def kill(self, name: str) -> None:
        self.killed.append((name, time.time()))


def test_plot_through_a_kill_kills_once_half_way_marks_it_and_returns_the_rates(monkeypatch):
    drawn: list[dict[str, float]] = []
    monkeypatch.setattr(live_plots, "rate_and_latency", lambda url, marks: drawn.append(dict(marks)) or f"figure {url}")
    monkeypatch.setattr(live_plots.prom, "calls_per_second", lambda url: {"user-1": 20.0, "user-3": 0.0})
    cluster, steps = _Cluster(), []
    started = time.time()
    after = live_plots.plot_through_a_kill(
        "http://127.0.0.1:9090", cluster, "user-3", seconds=1.0, refresh=0.1, progress=lambda *a: steps.append(a)
    )
    assert after == {"user-1": 20.0, "user-3": 0.0}
    assert 1.0 <= time.time() - started < 2.0
    [(name, killed_at)] = cluster.killed
    assert name == "user-3" and 0.5 <= killed_at - started < 1.0
    assert drawn[0] == {} and list(drawn[-1]) == ["kill user-3"], "the first plot has no mark, the last the kill"
    assert 0 <= drawn[-1]["kill user-3"] - killed_at < 0.1
    assert len(drawn) >= 5 and all(total == 1 for _, total, _ in steps)
    assert steps[0][2] == "user-3 dies half way" and steps[-1][2] == "killed user-3"


def test_rate_and_latency_draws_both_plots_with_the_marks(monkeypatch):
    calls = []
    monkeypatch.setattr(live_plots.prom, "plot_rate", lambda url, **kw: calls.append(("rate", url, kw["marks"])))
    monkeypatch.setattr(live_plots.prom, "plot_latency", lambda url, **kw: calls.append(("latency", kw["method"])))
    figure = live_plots.rate_and_latency("http://127.0.0.1:9090", {"kill user-3": 1.0})
    assert len(figure.axes) == 2
    assert calls == [("rate", "http://127.0.0.1:9090", {"kill user-3": 1.0}), ("latency", "CreateUser")]
