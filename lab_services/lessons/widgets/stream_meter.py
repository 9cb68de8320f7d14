"""StreamMeter: a resumable watch's throughput live, which instance serves it, and a button that kills that instance.

meter = StreamMeter(watch, kill=lambda instance_id: servers[instance_id].stop(0), writer=writer)
display(meter.widget)
meter.start(duration=30)          # writes `write_rate` users a second and redraws; stops by itself
meter.kill_button.click()         # the serving instance dies; the watch resumes elsewhere
meter.stop(); watch.check()       # no gap, no duplicate
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from lab_services.core.background import BackgroundThread
from lab_services.core.table import html_table
from lab_services.lessons.streaming import FanOutWriter, ResumableWatch


class StreamMeter(BackgroundThread):
    """Shows a ResumableWatch: events per second, last sequence, serving instance, switches, gaps and duplicates.

    The background thread writes through `writer` (if given) at `write_rate` changes per second, so there
    is traffic to watch, and only sets widget values. `kill(instance_id)` is whatever kills an instance in
    this lesson: `cluster.kill` for lab processes, `server.stop` for in-process ones.
    """

    def __init__(
        self,
        watch: ResumableWatch,
        kill: Callable[[str], Any],
        writer: FanOutWriter | None = None,
        write_rate: float = 50.0,
        redraw_every: float = 0.25,
    ):
        self.watch = watch
        self.kill = kill
        self.writer = writer
        self.write_rate = write_rate
        self.redraw_every = redraw_every
        self.kills: list[tuple[float, str]] = []  # (time.monotonic(), instance id)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

        self.kill_button = widgets.Button(
            description="kill serving instance",
            button_style="danger",
            tooltip="kill the instance this stream is reading from",
        )
        self.kill_button.on_click(lambda _: self.kill_serving())
        self.serving = widgets.HTML()
        self.throughput = widgets.HTML()
        self.integrity = widgets.HTML()
        self.history = widgets.HTML()
        self.status = widgets.HTML()
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.kill_button, self.serving]),
                self.throughput,
                self.integrity,
                widgets.HTML("<b>Streams opened</b>"),
                self.history,
                self.status,
            ]
        )
        self.redraw()

    def kill_serving(self) -> str | None:
        """Kill the instance serving the stream now; returns its id (None if no stream is open)."""
        victim = self.watch.current
        if victim is None:
            self.status.value = "no stream is open right now; nothing to kill"
            return None
        self.kills.append((time.monotonic(), victim))
        self.kill(victim)
        self.status.value = f"killed {victim}"
        return victim

    thread_name = "stream-meter"

    def _run(self, until: float | None) -> None:
        next_write = next_draw = time.monotonic()
        while self._keep_running(until):
            now = time.monotonic()
            if self.writer is not None and self.write_rate > 0 and now >= next_write:
                self.writer.create()
                next_write = max(next_write + 1 / self.write_rate, now - 1.0)  # never burst more than a second's worth
            if now >= next_draw:
                self.redraw()
                next_draw = now + self.redraw_every
            wait_for = min(next_draw, next_write if self.writer is not None and self.write_rate > 0 else next_draw)
            self._stopping.wait(max(0.0, wait_for - time.monotonic()))
        self.redraw()

    def redraw(self) -> None:
        watch = self.watch
        current = watch.current
        self.serving.value = (
            f"&nbsp; stream served by <b>{current}</b>"
            if current
            else "&nbsp; <i>no stream open (reconnecting)</i>"
            if watch.error is None
            else f"&nbsp; <b style='color:#cf222e'>gave up: {watch.error}</b>"
        )
        written = f" · writer at sequence {self.writer.sequence}" if self.writer is not None else ""
        self.throughput.value = (
            f"<b>{watch.rate(1.0):.0f}</b> events/s · last sequence <b>{watch.last_sequence or 0}</b>{written}"
        )
        check = watch.check()
        ok = not check["gaps"] and not check["duplicates"]
        colour = "#1a7f37" if ok else "#cf222e"
        self.integrity.value = (
            f"<span style='color:{colour}'>{check['events']} events from {', '.join(check['instances']) or '-'}: "
            f"{len(check['gaps'])} missing, {len(check['duplicates'])} duplicated</span>"
        )
        self.history.value = html_table(
            [
                {
                    "opened on": s.to,
                    "after": s.previous or "-",
                    "resumed after sequence": "-" if s.since is None else s.since,
                    "why": s.reason[:70],
                }
                for s in watch.switches[-6:]
            ],
            ["opened on", "after", "resumed after sequence", "why"],
        )
