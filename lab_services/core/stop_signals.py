"""SIGTERM and SIGINT taken with sigwait, never by a handler.

A handler runs in the main thread between two bytecodes. One that sets a threading.Event deadlocks when that thread
holds the Event's own lock at the moment, entering or leaving `Event.wait`: `set()` then waits for a lock its own
thread holds. The classroom proxy's forwarder hung exactly so, orphaned. Blocking the signals before any thread
starts, so every thread inherits the mask, and taking them with sigwait runs no handler at all; a signal that came
early (during startup) waits, pending, until the process asks for it.

Only for processes that start no children: a blocked mask is inherited across exec.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def block_stop_signals() -> None:
    """Hold SIGTERM and SIGINT pending from now on; call before starting any thread."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def wait_for_stop_signal(timeout: float | None = None) -> signal.Signals | None:
    """The stop signal that arrived (or was pending), or None when `timeout` seconds passed without one."""
    if timeout is None:
        return signal.Signals(signal.sigwait(STOP_SIGNALS))
    info = signal.sigtimedwait(STOP_SIGNALS, timeout)
    return None if info is None else signal.Signals(info.si_signo)
