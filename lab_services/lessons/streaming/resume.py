"""A WatchUsers client that survives its server dying: it resumes on another instance with `since_sequence`.

    watch = ResumableWatch(watcher).start()           # follows one instance; resumes on another when it dies
    watch.wait_for_sequence(writer.sequence); watch.check()   # {"events": 10, "gaps": [], "duplicates": [], ...}

A sequence number only means the same change on two instances if both saw the same changes in the same order
(see `fan_out`). An instance that missed changes (it restarted, empty) answers OUT_OF_RANGE, and the watch
moves on to another one instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from lab_services._proto.lab.user.v1 import user_service_pb2 as pb
from lab_services._proto.lab.user.v1 import user_service_pb2_grpc as pb_grpc
from lab_services.core.background import BackgroundThread
from lab_services.core.instance import ServiceInstance
from lab_services.discovery.watcher import Watcher

log = logging.getLogger(__name__)

ChannelFactory = Callable[[str], grpc.Channel]

# Codes after which another instance may serve the watch: the server died or shut down (UNAVAILABLE),
# its connection broke mid-stream (UNKNOWN, CANCELLED from the server side), or it lacks our history.
_MOVE_ON = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)


@dataclass(frozen=True)
class Received:
    """One event the watch delivered: its sequence, which instance sent it, and when (time.monotonic())."""

    sequence: int
    instance: str
    kind: str
    user_id: str
    at: float


@dataclass(frozen=True)
class Switch:
    """The watch (re)opened its stream on `to` at `at`, resuming after `since` (None: from now on)."""

    at: float
    previous: str | None
    to: str
    since: int | None
    reason: str


class ResumableWatch(BackgroundThread):
    """Follows WatchUsers on one instance the watcher lists; when the stream breaks, resumes on another.

    Every delivered event is kept in `received` as (sequence, instance, ...), so a lesson can check that
    the events across a server's death have no gap and no duplicate (`check()`). Instances that failed are
    avoided for `avoid_for` seconds, long enough for the registry to notice the death. Stop with `stop()`;
    `wait()` returns once the thread ended (by itself only when the watch gave up, see `error`).
    """

    def __init__(
        self,
        watcher: Watcher,
        *,
        channel_factory: ChannelFactory = grpc.insecure_channel,
        since_sequence: int | None = None,
        avoid_for: float = 5.0,
        connect_timeout: float = 2.0,
        give_up_after: float = 30.0,
    ):
        self.watcher = watcher
        self.channel_factory = channel_factory
        self.avoid_for = avoid_for
        self.connect_timeout = connect_timeout
        self.give_up_after = give_up_after
        self.last_sequence: int | None = since_sequence
        self.received: list[Received] = []
        self.switches: list[Switch] = []
        self.failures: list[tuple[float, str, str]] = []  # (at, instance, "CODE: details")
        self.error: str | None = None  # set when the watch gave up
        self.current: str | None = None
        self._avoid: dict[str, float] = {}
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._call: Any = None
        self._thread = None
        self.thread_name = f"resumable-watch-{watcher.service}"

    # Lifecycle (start, stop, wait and running from BackgroundThread)

    def start(self) -> ResumableWatch:
        """Follow the watcher's instances in the background until `stop()`; a watch starts once."""
        if self._thread is not None:
            raise RuntimeError("this ResumableWatch was already started; make a new one")
        return super().start()

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel the stream and end the thread; safe to call twice."""
        self._stopping.set()
        with self._cond:
            call = self._call
            self._cond.notify_all()
        if call is not None:
            call.cancel()
        self.wait(timeout)

    def __enter__(self) -> ResumableWatch:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # Reading what happened

    def wait_for_sequence(self, sequence: int, timeout: float = 10.0) -> bool:
        """Wait until an event with at least `sequence` arrived; False after `timeout` or if the watch gave up."""
        with self._cond:
            return (
                self._cond.wait_for(
                    lambda: (self.last_sequence or 0) >= sequence or self.error is not None or not self.running, timeout
                )
                and (self.last_sequence or 0) >= sequence
            )

    def wait_serving(self, timeout: float = 10.0) -> str | None:
        """Wait until a stream is open; the id of the instance serving it (None after `timeout`)."""
        with self._cond:
            self._cond.wait_for(lambda: self.current is not None or self.error is not None, timeout)
            return self.current

    def instances_used(self) -> list[str]:
        """The instances that delivered events, in the order they first did."""
        with self._cond:
            return list(dict.fromkeys(r.instance for r in self.received))

    def check(self, first: int | None = None, last: int | None = None) -> dict[str, Any]:
        """Gaps and duplicates among the received sequences between `first` and `last` (default: what arrived).

        Returns {"events", "first", "last", "gaps": [missing sequences], "duplicates": [sequences seen twice],
        "instances": [...], "switches": n}.
        """
        with self._cond:
            sequences = [r.sequence for r in self.received]
            instances = list(dict.fromkeys(r.instance for r in self.received))
            switches = len(self.switches)
        if not sequences:
            return {
                "events": 0,
                "first": None,
                "last": None,
                "gaps": [],
                "duplicates": [],
                "instances": [],
                "switches": switches,
            }
        first = min(sequences) if first is None else first
        last = max(sequences) if last is None else last
        seen: set[int] = set()
        duplicates = sorted({s for s in sequences if s in seen or seen.add(s)})
        gaps = [s for s in range(first, last + 1) if s not in seen]
        return {
            "events": len(sequences),
            "first": first,
            "last": last,
            "gaps": gaps,
            "duplicates": duplicates,
            "instances": instances,
            "switches": switches,
        }

    def rate(self, window: float = 1.0) -> float:
        """Events per second over the last `window` seconds."""
        now = time.monotonic()
        with self._cond:
            recent = sum(1 for r in reversed(self.received[-5000:]) if now - r.at <= window)
        return recent / window

    # The loop

    def _run(self, until: float | None) -> None:
        stuck_since: float | None = None
        while self._keep_running(until):
            instance = self._choose()
            if instance is None:
                stuck_since = stuck_since or time.monotonic()
                if time.monotonic() - stuck_since > self.give_up_after:
                    self._give_up(
                        f"no instance of {self.watcher.service!r} could serve the watch for {self.give_up_after:g} s"
                    )
                    return
                self._stopping.wait(0.05)
                continue
            outcome = self._follow(instance)
            if outcome == "delivered":
                stuck_since = None
            elif outcome == "stopped":
                return

    def _choose(self) -> ServiceInstance | None:
        """The first listed instance not avoided: the one we were on if it is still fine, else the next."""
        now = time.monotonic()
        candidates = [i for i in self.watcher.instances() if self._avoid.get(i.id, 0) <= now]
        if not candidates:
            return None
        for instance in candidates:
            if instance.id == self.current:
                return instance
        return candidates[0]

    def _follow(self, instance: ServiceInstance) -> str:
        """Stream from `instance` until it breaks; 'delivered' if any event came, 'failed' if none, 'stopped'."""
        channel = self.channel_factory(instance.address)
        delivered = False
        try:
            try:
                grpc.channel_ready_future(channel).result(timeout=self.connect_timeout)
            except grpc.FutureTimeoutError:
                self._failed(instance, f"could not connect within {self.connect_timeout:g} s")
                return "failed"
            since = self.last_sequence
            request = pb.WatchUsersRequest() if since is None else pb.WatchUsersRequest(since_sequence=since)
            call = pb_grpc.UserServiceStub(channel).WatchUsers(request)
            with self._cond:
                if self._stopping.is_set():
                    call.cancel()
                    return "stopped"
                self._call = call
                previous = self.switches[-1].to if self.switches else None
                reason = self.failures[-1][2] if self.failures else "first stream"
                self.switches.append(Switch(time.monotonic(), previous, instance.id, since, reason))
                self.current = instance.id
                self._cond.notify_all()
            for event in call:
                delivered = True
                self._deliver(event, instance.id)
        except grpc.RpcError as err:
            if self._stopping.is_set():
                return "stopped"
            code = err.code()
            self._failed(instance, f"{code.name}: {err.details()}")
            if code not in _MOVE_ON:
                self._give_up(f"{instance.id} answered {code.name}: {err.details()}")
                return "stopped"
            return "delivered" if delivered else "failed"
        finally:
            with self._cond:
                self._call = None
                self.current = None
            channel.close()
        if self._stopping.is_set():
            return "stopped"
        self._failed(instance, "the stream ended without a status")
        return "delivered" if delivered else "failed"

    def _deliver(self, event: pb.UserEvent, instance_id: str) -> None:
        with self._cond:
            # Resuming is exact, so an old sequence here would be a bug worth seeing, not hiding: keep it.
            self.received.append(
                Received(
                    event.sequence, instance_id, pb.UserEvent.Kind.Name(event.kind), event.user.id, time.monotonic()
                )
            )
            self.last_sequence = max(self.last_sequence or 0, event.sequence)
            self._cond.notify_all()

    def _failed(self, instance: ServiceInstance, why: str) -> None:
        log.info("watch on %s broke (%s); looking for another instance", instance.id, why)
        with self._cond:
            self.failures.append((time.monotonic(), instance.id, why))
            self._avoid[instance.id] = time.monotonic() + self.avoid_for

    def _give_up(self, why: str) -> None:
        log.warning("resumable watch gave up: %s", why)
        with self._cond:
            self.error = why
            self._cond.notify_all()
