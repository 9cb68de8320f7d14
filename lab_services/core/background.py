"""The background thread a live widget or watcher runs, in one place: start for a while, stop, wait, ask if running."""

from __future__ import annotations

import threading
import time


class BackgroundThread:
    """`start(duration)` / `stop()` / `wait()` / `running` for a widget whose work runs in one daemon thread.

    A subclass implements `_run(until)` and loops `while self._keep_running(until)`, sleeping with
    `self._stopping.wait(seconds)` so `stop()` ends it at once. A `duration` makes the thread end by
    itself, so a notebook run headless never hangs on a widget someone forgot to stop.
    """

    thread_name = "lab-widget"
    # Each widget sets both in its __init__, so stop() before start() is safe and reads its own event.
    _thread: threading.Thread | None
    _stopping: threading.Event

    def start(self, duration: float | None = None):
        """Run in the background until `stop()`, or for `duration` seconds; returns the widget."""
        if self.running:
            return self
        self._stopping.clear()
        until = None if duration is None else time.monotonic() + duration
        self._thread = threading.Thread(target=self._run, args=(until,), name=self.thread_name, daemon=True)
        self._thread.start()
        self._started()
        return self

    def _run(self, until: float | None) -> None:
        raise NotImplementedError

    def _started(self) -> None:
        """Hook for a widget that shows whether it is running."""

    def _keep_running(self, until: float | None) -> bool:
        return not self._stopping.is_set() and (until is None or time.monotonic() < until)

    def stop(self) -> None:
        """End the thread and wait for it; safe to call twice."""
        self._stopping.set()
        self.wait()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end (after `stop()` or its duration); True once it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
