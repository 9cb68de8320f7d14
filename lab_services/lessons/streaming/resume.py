"""Long-lived streams: a WatchUsers client that survives its server dying, flow control on Chat, deadlines and cancel.

    writer = FanOutWriter(watcher)                    # every change goes to every instance, in the same order
    watch = ResumableWatch(watcher).start()           # follows one instance; resumes on another when it dies
    writer.create_many(10); watch.wait_for_sequence(writer.sequence)
    watch.check()                                     # {"events": 10, "gaps": [], "duplicates": [], ...}

Each user service instance keeps its own store with its own sequence numbers, and instances do not
replicate. A sequence number only means the same change on two instances if both saw the same changes
in the same order, so the lessons write through a FanOutWriter: it sends every CreateUser to every live
instance, one after another, under one lock. Instances that started together then agree on every
sequence, and a watch can resume on any of them with `since_sequence`. An instance that missed changes
(it restarted, empty) answers OUT_OF_RANGE, and the watch moves on to another one instead.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from lab_services._proto.lab.user.v1 import user_service_pb2 as pb
from lab_services._proto.lab.user.v1 import user_service_pb2_grpc as pb_grpc
from lab_services.discovery.instance import Instance
from lab_services.discovery.watcher import Watcher

log = logging.getLogger(__name__)

ChannelFactory = Callable[[str], grpc.Channel]

# Codes after which another instance may serve the watch: the server died or shut down (UNAVAILABLE),
# its connection broke mid-stream (UNKNOWN, CANCELLED from the server side), or it lacks our history.
_MOVE_ON = frozenset({
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
})


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


class ResumableWatch:
    """Follows WatchUsers on one instance the watcher lists; when the stream breaks, resumes on another.

    Every delivered event is kept in `received` as (sequence, instance, ...), so a lesson can check that
    the events across a server's death have no gap and no duplicate (`check()`). Instances that failed are
    avoided for `avoid_for` seconds, long enough for the registry to notice the death. Stop with `stop()`.
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
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> ResumableWatch:
        if self._thread is not None:
            raise RuntimeError("this ResumableWatch was already started; make a new one")
        self._thread = threading.Thread(target=self._run, name=f"resumable-watch-{self.watcher.service}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel the stream and end the thread; safe to call twice."""
        self._stopping.set()
        with self._cond:
            call = self._call
            self._cond.notify_all()
        if call is not None:
            call.cancel()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ResumableWatch:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # Reading what happened

    def wait_for_sequence(self, sequence: int, timeout: float = 10.0) -> bool:
        """Wait until an event with at least `sequence` arrived; False after `timeout` or if the watch gave up."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (self.last_sequence or 0) >= sequence or self.error is not None or not self.running, timeout
            ) and (self.last_sequence or 0) >= sequence

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
            return {"events": 0, "first": None, "last": None, "gaps": [], "duplicates": [], "instances": [], "switches": switches}
        first = min(sequences) if first is None else first
        last = max(sequences) if last is None else last
        seen: set[int] = set()
        duplicates = sorted({s for s in sequences if s in seen or seen.add(s)})
        gaps = [s for s in range(first, last + 1) if s not in seen]
        return {"events": len(sequences), "first": first, "last": last, "gaps": gaps, "duplicates": duplicates,
                "instances": instances, "switches": switches}

    def rate(self, window: float = 1.0) -> float:
        """Events per second over the last `window` seconds."""
        now = time.monotonic()
        with self._cond:
            recent = sum(1 for r in reversed(self.received[-5000:]) if now - r.at <= window)
        return recent / window

    # The loop

    def _run(self) -> None:
        stuck_since: float | None = None
        while not self._stopping.is_set():
            instance = self._choose()
            if instance is None:
                stuck_since = stuck_since or time.monotonic()
                if time.monotonic() - stuck_since > self.give_up_after:
                    self._give_up(f"no instance of {self.watcher.service!r} could serve the watch for {self.give_up_after:g} s")
                    return
                self._stopping.wait(0.05)
                continue
            outcome = self._follow(instance)
            if outcome == "delivered":
                stuck_since = None
            elif outcome == "stopped":
                return

    def _choose(self) -> Instance | None:
        """The first listed instance not avoided: the one we were on if it is still fine, else the next."""
        now = time.monotonic()
        candidates = [i for i in self.watcher.instances() if self._avoid.get(i.id, 0) <= now]
        if not candidates:
            return None
        for instance in candidates:
            if instance.id == self.current:
                return instance
        return candidates[0]

    def _follow(self, instance: Instance) -> str:
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
            self.received.append(Received(event.sequence, instance_id, pb.UserEvent.Kind.Name(event.kind),
                                          event.user.id, time.monotonic()))
            self.last_sequence = max(self.last_sequence or 0, event.sequence)
            self._cond.notify_all()

    def _failed(self, instance: Instance, why: str) -> None:
        log.info("watch on %s broke (%s); looking for another instance", instance.id, why)
        with self._cond:
            self.failures.append((time.monotonic(), instance.id, why))
            self._avoid[instance.id] = time.monotonic() + self.avoid_for

    def _give_up(self, why: str) -> None:
        log.warning("resumable watch gave up: %s", why)
        with self._cond:
            self.error = why
            self._cond.notify_all()


class FanOutWriter:
    """Creates users on every instance the watcher lists, one change at a time, so their sequences agree.

    `sequence` is the highest sequence the instances answered; `skipped` counts writes an instance
    missed because it was down (it can no longer resume watches and is avoided by ResumableWatch).
    """

    def __init__(self, watcher: Watcher, channel_factory: ChannelFactory = grpc.insecure_channel, timeout: float = 2.0):
        self.watcher = watcher
        self.channel_factory = channel_factory
        self.timeout = timeout
        self.sequence = 0
        self.written = 0
        self.skipped: dict[str, int] = {}
        self._channels: dict[str, tuple[str, grpc.Channel]] = {}
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._tag = f"{time.time_ns():x}"

    def create(self) -> int:
        """Create one user on every listed instance; returns how many instances took it."""
        n = next(self._numbers)
        request = pb.CreateUserRequest(name=f"fan-out {n}", email=f"fanout{n}.{self._tag}@example.org")
        took = 0
        with self._lock:
            for instance in self.watcher.instances():
                stub = pb_grpc.UserServiceStub(self._channel(instance))
                try:
                    stub.CreateUser(request, timeout=self.timeout, wait_for_ready=False)
                except grpc.RpcError:
                    self.skipped[instance.id] = self.skipped.get(instance.id, 0) + 1
                    continue
                took += 1
            if took:
                self.written += 1
                # Sequence numbers are counted per store; every instance that took all writes is at `written`
                # changes beyond where they all started.
                self.sequence += 1
        return took

    def create_many(self, count: int, interval: float = 0.0) -> int:
        """Create `count` users, pausing `interval` seconds between them; returns how many were written."""
        for i in range(count):
            if i and interval:
                time.sleep(interval)
            self.create()
        return self.written

    def start_sequence(self) -> int:
        """The sequence every listed instance has now (they must agree); ValueError naming them if not."""
        sequences = {}
        with self._lock:
            for instance in self.watcher.instances():
                stub = pb_grpc.UserServiceStub(self._channel(instance))
                call = stub.WatchUsers(pb.WatchUsersRequest(since_sequence=0), timeout=0.3)
                last = 0
                try:
                    for event in call:
                        last = event.sequence
                except grpc.RpcError as err:
                    if err.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                        raise
                sequences[instance.id] = last
        if len(set(sequences.values())) > 1:
            raise ValueError(f"the instances disagree on their latest sequence: {sequences}; "
                             "a fan-out writer needs instances that started together (empty) and took the same changes")
        self.sequence = next(iter(sequences.values()), 0)
        return self.sequence

    def close(self) -> None:
        with self._lock:
            for _, channel in self._channels.values():
                channel.close()
            self._channels.clear()

    def _channel(self, instance: Instance) -> grpc.Channel:
        address, channel = self._channels.get(instance.id, (None, None))
        if channel is None or address != instance.address:
            if channel is not None:
                channel.close()
            channel = self.channel_factory(instance.address)
            self._channels[instance.id] = (instance.address, channel)
        return channel


# Flow control on a bidi stream


@dataclass(frozen=True)
class FlowSample:
    """At `t` seconds, the sender had handed `sent` messages to gRPC and the reader had read `read` replies."""

    t: float
    sent: int
    read: int


def backpressure_experiment(
    address: str,
    seconds: float = 3.0,
    read_every: float = 0.02,
    message_bytes: int = 32_000,
    fast_for: float = 0.0,
    channel_factory: ChannelFactory = grpc.insecure_channel,
) -> dict[str, Any]:
    """A Chat where the sender sends as fast as gRPC lets it and the reader reads one reply every `read_every` s.

    gRPC asks the request iterator for the next message only once the previous one was written, and the
    server answers each message before reading the next; when the reader falls behind, the reply buffers
    fill, the server blocks in `yield`, stops reading, and the sender's writes stall: the sender can never
    get further ahead than what the HTTP/2 flow-control windows and socket buffers hold. The first
    `fast_for` seconds the reader keeps up, so you see the sender slow down when the reader does.

    Returns {"samples": [FlowSample], "sent", "read", "max_ahead", "ahead_at_end", "sender_rate", "reader_rate",
    "fast_sender_rate", "sender_stalled", ...}; rates are messages per second over the last third of the run.
    """
    text = "x" * message_bytes
    stop = threading.Event()
    counts = {"sent": 0, "read": 0}

    def requests() -> Iterator[pb.ChatMessage]:
        while not stop.is_set():
            counts["sent"] += 1  # counted when gRPC asks for it: the previous message has been written
            yield pb.ChatMessage(sender="fast sender", text=text)

    samples: list[FlowSample] = []
    channel = channel_factory(address)
    started = time.monotonic()
    call = pb_grpc.UserServiceStub(channel).Chat(requests(), timeout=seconds + 10)

    def sampler() -> None:
        while not stop.is_set():
            samples.append(FlowSample(round(time.monotonic() - started, 3), counts["sent"], counts["read"]))
            stop.wait(0.05)

    thread = threading.Thread(target=sampler, name="backpressure-sampler", daemon=True)
    thread.start()
    try:
        for _reply in call:
            counts["read"] += 1
            elapsed = time.monotonic() - started
            if elapsed >= seconds:
                break
            if elapsed >= fast_for:
                time.sleep(read_every)
    finally:
        stop.set()
        call.cancel()
        thread.join()
        channel.close()
    samples.append(FlowSample(round(time.monotonic() - started, 3), counts["sent"], counts["read"]))
    ahead = [s.sent - s.read for s in samples]
    fast = [s for s in samples if s.t <= fast_for] or samples[:1]
    tail = [s for s in samples if s.t >= seconds * 2 / 3] or samples[-2:]
    sender_gain, reader_gain = tail[-1].sent - tail[0].sent, tail[-1].read - tail[0].read
    sender_rate = sender_gain / max(1e-9, tail[-1].t - tail[0].t)
    reader_rate = reader_gain / max(1e-9, tail[-1].t - tail[0].t)
    return {
        "samples": samples,
        "sent": counts["sent"],
        "read": counts["read"],
        "max_ahead": max(ahead),
        "ahead_at_end": ahead[-1],
        "buffered_kb": round(max(ahead) * message_bytes / 1024),
        "fast_sender_rate": round(fast[-1].sent / max(1e-9, fast[-1].t), 1) if fast_for else None,
        "reader_rate": round(reader_rate, 1),
        "sender_rate": round(sender_rate, 1),
        # Over the last third the sender is held near the reader's pace (the windows may still be growing a
        # little, as gRPC's bandwidth probing enlarges them), far below what it managed unhindered.
        "sender_stalled": sender_rate <= 2 * reader_rate + 5,
    }


def plot_flow(result: dict[str, Any]):
    """Sender and reader progress over time from `backpressure_experiment`: the gap is what the buffers hold."""
    from matplotlib.figure import Figure

    samples = result["samples"]
    figure = Figure(figsize=(7, 3.5), layout="constrained")
    axes = figure.add_subplot()
    axes.plot([s.t for s in samples], [s.sent for s in samples], label="messages the sender got out")
    axes.plot([s.t for s in samples], [s.read for s in samples], label="replies the reader read")
    axes.fill_between([s.t for s in samples], [s.read for s in samples], [s.sent for s in samples], alpha=0.15,
                      label="in flow-control windows and buffers")
    axes.set_xlabel("seconds")
    axes.set_ylabel("messages")
    axes.set_title("Backpressure: a slow reader slows the sender")
    axes.legend(loc="upper left")
    return figure


# Deadlines and cancellation on a server stream


def stream_outcome(address: str, *, timeout: float | None = None, cancel_after: float | None = None,
                   interval_ms: int = 100, limit: int = 0, channel_factory: ChannelFactory = grpc.insecure_channel) -> dict[str, Any]:
    """Read a paced ListUsers stream with a deadline (`timeout`) or cancel it after `cancel_after` seconds.

    A deadline covers the whole stream, not each message: a stream that would take longer than
    `timeout` ends DEADLINE_EXCEEDED part-way. Returns {"received", "code", "seconds", "details"}.
    """
    channel = channel_factory(address)
    started = time.monotonic()
    received = 0
    call = pb_grpc.UserServiceStub(channel).ListUsers(pb.ListUsersRequest(limit=limit, interval_ms=interval_ms), timeout=timeout)
    timer = None
    if cancel_after is not None:
        timer = threading.Timer(cancel_after, call.cancel)
        timer.daemon = True
        timer.start()
    code, details = "OK", ""
    try:
        for _user in call:
            received += 1
    except grpc.RpcError as err:
        code, details = err.code().name, err.details() or ""
    finally:
        if timer is not None:
            timer.cancel()
        channel.close()
    return {"received": received, "code": code, "seconds": round(time.monotonic() - started, 3), "details": details}
