"""HealthBoard: one instance's checks as Consul sees them, live, with buttons that flip the instance's health.

board = HealthBoard(consul_http, service_id, admin_address)
display(board.widget)
board.start(duration=30)                   # poll in the background; stops by itself after 30 s
board.not_serving_button.click()           # the instance now answers NOT_SERVING
board.seconds_after_flip("service:user-1:grpc", "critical")   # how long Consul took to notice
board.stop()
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import ipywidgets as widgets

from lab_services.core.background import BackgroundThread
from lab_services.core.table import html_table
from lab_services.registry.consul_health import ConsulHealth
from lab_services.service import AdminClient

COLOURS = {"passing": "#1a7f37", "warning": "#9a6700", "critical": "#cf222e", "gone": "#57606a"}


@dataclass(frozen=True)
class Transition:
    """Check `check_id` was first seen with `status` at `t` seconds on the board's clock."""

    t: float
    check_id: str
    status: str


class HealthBoard(BackgroundThread):
    """Polls the Consul agent for one instance's checks and records every status change in `timeline`.

    The poll thread only writes widget values (`checks`, `history`) and appends to `timeline`; the buttons
    change the instance's health through its admin HTTP port, exactly as an operator or a failing dependency would.
    Times are seconds since the board was created, measured by polling every `poll_every` seconds, so a
    reading is late by at most one poll.
    """

    def __init__(
        self, consul_http: str, service_id: str, admin_address: str, poll_every: float = 0.1, service: str = ""
    ):
        self.service_id = service_id
        self.service = service
        self.poll_every = poll_every
        self.consul = ConsulHealth(consul_http)
        self.admin = AdminClient(admin_address)
        self.timeline: list[Transition] = []
        self.flips: list[tuple[float, str]] = []
        self._t0 = time.monotonic()
        self._last: dict[str, str] = {}
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.thread_name = f"health-board-{service_id}"

        self.serving_button = widgets.Button(description="SERVING", button_style="success", tooltip="report SERVING")
        self.not_serving_button = widgets.Button(
            description="NOT_SERVING", button_style="danger", tooltip="report NOT_SERVING"
        )
        self.serving_button.on_click(lambda _: self.set_health("SERVING"))
        self.not_serving_button.on_click(lambda _: self.set_health("NOT_SERVING"))
        self.reported = widgets.HTML()
        self.polling = widgets.HTML()
        self.checks = widgets.HTML()
        self.history = widgets.HTML()
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.serving_button, self.not_serving_button, self.reported]),
                self.polling,
                self.checks,
                widgets.HTML("<b>Changes seen</b> (seconds on the board's clock)"),
                self.history,
            ]
        )
        self._show_reported(self.admin.health(service))
        self._show_polling()
        self.poll_once()

    # -- the clock ---------------------------------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic() - self._t0

    # -- flipping health -----------------------------------------------------------------------------------
    def set_health(self, status: str) -> float:
        """Make the instance report `status` ("SERVING" or "NOT_SERVING"); returns the flip's time on the board
        clock."""
        # Stamped before the request: the instance may answer differently, and Consul notice, before it returns.
        t = self.now()
        self.admin.set_health(status, service=self.service)
        with self._changed:
            self.flips.append((t, status))
        self._show_reported(status)
        return t

    # -- polling ---------------------------------------------------------------------------------------
    def poll_once(self) -> dict[str, str]:
        """Read the checks once, record changes, redraw; returns {check_id: status} ('gone' for a removed check)."""
        try:
            states = self.consul.checks(self.service_id)
        except Exception as err:  # Consul down or restarting is a state worth showing, not a reason to stop polling
            self.checks.value = (
                f"<span style='color:{COLOURS['critical']}'>Consul did not answer: {type(err).__name__}</span>"
            )
            return dict(self._last)
        # Stamped when the answer arrived, so a change is never dated before the flip that caused it.
        t = self.now()
        current = {s.check_id: s.status for s in states}
        current.update({check_id: "gone" for check_id in self._last if check_id not in current})
        with self._changed:
            for check_id, status in sorted(current.items()):
                if self._last.get(check_id) != status:
                    self.timeline.append(Transition(round(t, 3), check_id, status))
            self._last = {k: v for k, v in current.items() if v != "gone"}
            self._changed.notify_all()
        self.checks.value = html_table(
            [
                {"check": s.check_id, "kind": s.kind, "status": _badge(s.status), "output": s.output[:80]}
                for s in states
            ],
            ["check", "kind", "status", "output"],
            markup=("status",),
        )
        self.history.value = html_table(
            [{"t": f"{tr.t:.2f}", "check": tr.check_id, "status": tr.status} for tr in self.timeline[-12:]],
            ["t", "check", "status"],
        )
        return current

    def _started(self) -> None:
        self._show_polling()

    def _run(self, until: float | None) -> None:
        try:
            while self._keep_running(until):
                self.poll_once()
                self._stopping.wait(self.poll_every)
        finally:
            self._show_polling(running=False)

    def stop(self) -> None:
        """End the poll thread and wait for it; safe to call twice."""
        super().stop()
        self.consul.close()

    # -- measuring ---------------------------------------------------------------------------------------
    def seconds_after_flip(self, check_id: str, status: str, timeout: float = 15.0) -> float:
        """Seconds from the last flip until the board saw `check_id` reach `status`; waits up to `timeout` for it."""
        if not self.flips:
            raise RuntimeError("no flip yet: click a button or call set_health() first")
        if not self.running:
            raise RuntimeError("the board is not polling: call start() first")
        flipped_at = self.flips[-1][0]

        def seen() -> Transition | None:
            return next(
                (tr for tr in self.timeline if tr.check_id == check_id and tr.status == status and tr.t >= flipped_at),
                None,
            )

        with self._changed:
            found = self._changed.wait_for(lambda: seen() or not self.running, timeout) and seen()
        if not found:
            before = [tr.status for tr in self.timeline if tr.check_id == check_id and tr.t < flipped_at]
            already = f" (it was already {status} before the flip)" if before[-1:] == [status] else ""
            raise TimeoutError(
                f"{check_id} did not become {status} within {timeout:g} s of the flip; "
                f"it is {self._last.get(check_id, 'gone')!r}{already}"
            )
        return round(found.t - flipped_at, 3)

    def transitions(self, check_id: str | None = None) -> list[Transition]:
        """The recorded changes (of one check, if given), oldest first."""
        with self._changed:
            return [tr for tr in self.timeline if check_id is None or tr.check_id == check_id]

    # -- drawing -------------------------------------------------------------------------------------
    def _show_reported(self, status: str) -> None:
        colour = COLOURS["passing"] if status == "SERVING" else COLOURS["critical"]
        self.reported.value = f"&nbsp; {self.service_id} reports <b style='color:{colour}'>{status}</b>"

    def _show_polling(self, running: bool | None = None) -> None:
        running = self.running if running is None else running
        self.polling.value = (
            f"polling Consul every {self.poll_every:g} s"
            if running
            else "not polling (call <code>board.start()</code> to watch live)"
        )


def _badge(status: str) -> str:
    return f"<b style='color:{COLOURS.get(status, '#000')}'>{status}</b>"
