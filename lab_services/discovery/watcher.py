"""The part every registry watcher shares: a background thread, the current instances, diffing into events, subscribers.

A subclass follows one registry in `_follow()`, which runs until an error and hands each complete snapshot
to `_apply()`. The base class keeps the instance list, turns snapshot differences into `DiscoveryEvent`s,
calls subscribers, and retries `_follow()` after an error with jittered exponential backoff, keeping the
last known instances meanwhile: a client keeps calling what it knew rather than nothing while the
registry is unreachable.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from lab_services.core.backoff import Backoff
from lab_services.core.instance import ServiceInstance
from lab_services.discovery.instance import DiscoveryEvent

log = logging.getLogger(__name__)

Subscriber = Callable[[DiscoveryEvent], None]


class Watcher:
    """Follows the instances of one service in a registry; subclasses say how (`_follow`) and where (`where`).

    >>> w = ConsulWatcher("user", "127.0.0.1:8500").start()
    >>> w.wait_ready(5); [i.address for i in w.instances()]
    ['127.0.0.1:5001', '127.0.0.1:5002']
    >>> unsubscribe = w.subscribe(print)     # called on the watcher's thread for each event
    >>> w.stop()
    """

    source = ""

    def __init__(self, service: str, *, backoff: Backoff | None = None, max_events: int = 1000):
        if not isinstance(service, str) or not service:
            raise ValueError(f"invalid argument: service: {service!r}; name a service, e.g. 'user'")
        self.service = service
        self.backoff = backoff or Backoff(base=0.2, cap=2.0)
        self.last_error: str | None = None
        self.errors = 0
        self._instances: dict[str, ServiceInstance] = {}
        # What subscribers have been told; `wait_for` checks this, so it returns after channels have caught up.
        self._published: list[ServiceInstance] = []
        self._events: collections.deque[DiscoveryEvent] = collections.deque(maxlen=max_events)
        self._subscribers: list[Subscriber] = []
        self._changed = threading.Condition()
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def where(self) -> str:
        """Which registry this follows, for messages, e.g. 'consul at 127.0.0.1:8500'."""
        raise NotImplementedError

    def _follow(self) -> None:
        """Follow the registry until an error or `self._stopping`, calling `_apply` with every full snapshot."""
        raise NotImplementedError

    def _close(self) -> None:
        """Release clients; called on the watcher thread when it ends."""

    # Lifecycle

    def start(self) -> Watcher:
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} for {self.service!r} was already started; make a new one")
        self._thread = threading.Thread(target=self._run, name=f"{self.source}-watch-{self.service}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop following; a blocking query in flight may finish in the background (the thread is a daemon)."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> Watcher:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def ready(self) -> bool:
        """True once the first snapshot has been loaded."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    @property
    def connected(self) -> bool:
        """True while the registry answers: after a successful read, until the next error."""
        return self.ready and self.last_error is None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping.is_set()

    # What clients read

    def instances(self) -> list[ServiceInstance]:
        """The instances known now, sorted by id."""
        with self._changed:
            return sorted(self._instances.values(), key=lambda i: i.id)

    @property
    def events(self) -> list[DiscoveryEvent]:
        """The latest events, oldest first (at most `max_events`), for timelines."""
        with self._changed:
            return list(self._events)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(event)` on the watcher thread for every later event; returns the unsubscribe function."""
        with self._changed:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._changed:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def wait_for(self, predicate: Callable[[list[ServiceInstance]], bool], timeout: float = 10.0) -> bool:
        """Wait until `predicate(instances)` is true, with subscribers already told; False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if predicate(list(self._published)):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.5))

    # For subclasses

    def _apply(self, snapshot: dict[str, ServiceInstance]) -> list[DiscoveryEvent]:
        """Make `snapshot` the current instances; record and publish the differences."""
        now = time.time()
        with self._changed:
            old = self._instances
            events = [DiscoveryEvent("removed", old[i], now, self.source) for i in sorted(old.keys() - snapshot.keys())]
            for i in sorted(snapshot):
                if i not in old:
                    events.append(DiscoveryEvent("added", snapshot[i], now, self.source))
                elif old[i] != snapshot[i]:
                    events.append(DiscoveryEvent("changed", snapshot[i], now, self.source))
            self._instances = dict(snapshot)
            self._events.extend(events)
            subscribers = list(self._subscribers)
        for event in events:
            log.info("%s: %s", self.where, event)
            for callback in subscribers:
                try:
                    callback(event)
                except Exception:
                    log.exception("subscriber %r of %s failed on %s", callback, self.where, event)
        with self._changed:
            self.last_error = None  # the registry answered
            self._published = sorted(snapshot.values(), key=lambda i: i.id)
            self._ready.set()
            self._changed.notify_all()
        return events

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._follow()
                except Exception as err:  # every failure of the registry is retried; the thread never dies of one
                    if self._stopping.is_set():
                        break
                    self.errors += 1
                    self.last_error = f"{type(err).__name__}: {err}"
                    delay = next(self.backoff)
                    log.warning("%s: %s; retrying in %.2f s", self.where, self.last_error, delay)
                    self._on_error(err)
                    self._stopping.wait(delay)
        finally:
            self._close()

    def _on_error(self, err: Exception) -> None:
        """Hook after a failed `_follow`, e.g. to move on to the next server."""
