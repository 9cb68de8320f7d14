"""FaultPanel: inject errors and latency into one instance and watch a client's success rate, with retries and breakers.

panel = FaultPanel(watcher, admins={"user-1": "127.0.0.1:9101", ...}, target="user-2")
display(panel.widget)
panel.error_rate.value = 0.5      # the target now fails half its calls (through its admin port)
panel.breakers_toggle.value = True
panel.start(duration=30)          # traffic and a chart, one point per tick; stops by itself
panel.stop(); panel.reset()       # faults back to zero on every instance
"""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import grpc
import ipywidgets as widgets

from lab_services.core.background import BackgroundThread
from lab_services.core.table import html_table
from lab_services.discovery.picker_channel import PickerChannel
from lab_services.discovery.watcher import Watcher
from lab_services.lessons.resilience.measure import create_user_call
from lab_services.resilience.breaker import BreakerRegistry, CircuitOpenError
from lab_services.service import AdminClient


class FaultPanel(BackgroundThread):
    """Sliders set the target instance's faults; a traffic thread calls the service through a PickerChannel.

    Each tick makes `calls_per_tick` CreateUser calls and adds a row to `history`: success rate, p50 and
    p95 latency, calls the breakers refused, and calls per instance. The retries toggle switches the
    picker between 2 retries elsewhere and none; the breakers toggle switches per-instance breakers on
    (`breaker_settings`) and off. Passive ejection is off, so what you see is the breakers' doing.
    """

    def __init__(
        self,
        watcher: Watcher,
        admins: Mapping[str, str],
        target: str | None = None,
        *,
        calls_per_tick: int = 20,
        tick: float = 0.5,
        timeout: float = 1.0,
        breaker_settings: dict[str, Any] | None = None,
    ):
        if not admins:
            raise ValueError(
                "invalid argument: admins: empty; pass {instance id: admin address}, e.g. from cluster.status()"
            )
        self.admins = {i: AdminClient(a) for i, a in sorted(admins.items())}
        self.calls_per_tick = calls_per_tick
        self.tick = tick
        self.breakers = BreakerRegistry(**(breaker_settings or {"failure_threshold": 3, "window": 10, "open_for": 2.0}))
        self.picker = PickerChannel(watcher, retries=0, eject_for=0)
        self._call = create_user_call(self.picker, timeout=timeout)
        self.history: list[dict[str, Any]] = []
        self._t0 = time.monotonic()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

        ids = list(self.admins)
        self.target = widgets.Dropdown(options=ids, value=target or ids[0], description="instance")
        self.error_rate = widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="error rate")
        self.latency_ms = widgets.IntSlider(value=0, min=0, max=1000, step=10, description="latency ms")
        self.retries_toggle = widgets.Checkbox(value=False, description="retry elsewhere (2)")
        self.breakers_toggle = widgets.Checkbox(value=False, description="circuit breakers")
        self.start_button = widgets.Button(description="start traffic", button_style="primary")
        self.stop_button = widgets.Button(description="stop", button_style="warning")
        self.chart = widgets.Image(format="png")
        self.table = widgets.HTML()
        self.breaker_table = widgets.HTML()
        self.status = widgets.HTML()
        for knob in (self.error_rate, self.latency_ms):
            knob.observe(lambda _: self.apply_faults(), names="value")
        self.target.observe(self._retarget, names="value")
        self.retries_toggle.observe(
            lambda change: setattr(self.picker, "retries", 2 if change["new"] else 0), names="value"
        )
        self.breakers_toggle.observe(
            lambda change: setattr(self.picker, "breakers", self.breakers if change["new"] else None), names="value"
        )
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self._stopping.set())
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.target, self.error_rate, self.latency_ms]),
                widgets.HBox([self.retries_toggle, self.breakers_toggle, self.start_button, self.stop_button]),
                self.chart,
                self.table,
                self.breaker_table,
                self.status,
            ]
        )

    # Faults

    def apply_faults(self) -> dict[str, float]:
        """Send the sliders' values to the target instance; returns what it now applies."""
        applied = self.admins[self.target.value].set_faults(
            latency_ms=self.latency_ms.value, error_rate=self.error_rate.value
        )
        self.status.value = (
            f"{self.target.value}: latency {applied['latency_ms']:g} ms, error rate {applied['error_rate']:g}"
        )
        return applied

    def _retarget(self, change: dict[str, Any]) -> None:
        self.admins[change["old"]].set_faults(latency_ms=0, error_rate=0)
        self.apply_faults()

    def reset(self) -> None:
        """Faults back to zero on every instance, and the sliders with them."""
        for admin in self.admins.values():
            admin.set_faults(latency_ms=0, error_rate=0)
        with self.error_rate.hold_trait_notifications(), self.latency_ms.hold_trait_notifications():
            self.error_rate.value, self.latency_ms.value = 0.0, 0

    # Traffic

    def step(self) -> dict[str, Any]:
        """One tick of traffic, measured; the row is appended to `history` and drawn."""
        codes: Counter[str] = Counter()
        served: Counter[str] = Counter()
        seconds = []
        refused = 0
        for _ in range(self.calls_per_tick):
            started = time.monotonic()
            try:
                served[self._call().served_by] += 1
                codes["OK"] += 1
            except CircuitOpenError:
                refused += 1
                codes["UNAVAILABLE"] += 1
            except grpc.RpcError as err:
                codes[err.code().name] += 1
            seconds.append(time.monotonic() - started)
        seconds.sort()
        row = {
            "t": round(time.monotonic() - self._t0, 2),
            "success": round(codes["OK"] / self.calls_per_tick, 3),
            "p50_ms": round(seconds[len(seconds) // 2] * 1000, 1),
            "p95_ms": round(seconds[min(len(seconds) - 1, int(len(seconds) * 0.95))] * 1000, 1),
            "refused_by_breaker": refused,
            "codes": dict(codes),
            "served_by": dict(sorted(served.items())),
            "retries": self.picker.retries > 0,
            "breakers": self.picker.breakers is not None,
        }
        self.history.append(row)
        self.redraw()
        return row

    thread_name = "fault-panel"

    def _run(self, until: float | None) -> None:
        while self._keep_running(until):
            self.step()
            self._stopping.wait(self.tick)

    def close(self) -> None:
        """Stop traffic, clear every fault and close the channel."""
        self.stop()
        self.reset()
        self.picker.close()

    # Drawing

    def redraw(self) -> None:
        rows = self.history[-60:]
        self.chart.value = _chart_png(rows)
        self.table.value = html_table(
            [
                {k: r[k] for k in ("t", "success", "p50_ms", "p95_ms", "refused_by_breaker", "served_by")}
                for r in rows[-5:]
            ]
        )
        breakers = self.breakers.snapshot()
        self.breaker_table.value = (
            "<b>Breakers</b> "
            + ("(on)" if self.picker.breakers is not None else "(off)")
            + html_table([{"instance": i, **s} for i, s in breakers.items()])
        )


def _chart_png(rows: list[dict[str, Any]]) -> bytes:
    """Success rate (left axis) and p95 latency (right axis) per tick, as PNG bytes for an Image widget."""
    from matplotlib.figure import Figure  # only lessons that plot pay for matplotlib

    figure = Figure(figsize=(7, 2.6), layout="constrained")
    axes = figure.add_subplot()
    t = [r["t"] for r in rows]
    axes.plot(t, [r["success"] for r in rows], color="tab:green", marker=".", label="success rate")
    axes.set_ylim(-0.05, 1.05)
    axes.set_xlabel("seconds")
    axes.set_ylabel("success rate")
    latency = axes.twinx()
    latency.plot(t, [r["p95_ms"] for r in rows], color="tab:orange", marker=".", label="p95 latency (ms)")
    latency.set_ylabel("p95 ms")
    for r in rows:
        if r["breakers"]:
            axes.axvspan(r["t"] - 0.25, r["t"] + 0.25, color="tab:blue", alpha=0.06, linewidth=0)
    axes.set_title("client view (blue band: breakers on)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()
