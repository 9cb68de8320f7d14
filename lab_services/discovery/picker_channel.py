"""A grpc.Channel that keeps one connection per discovered instance and picks one per call with a policy.

Python gRPC has no pluggable name resolver (docs/architecture.md), so policies beyond round robin live here, in a
pool of channels fed by a watcher. Picking yourself means failing over yourself: a unary call that ends
UNAVAILABLE is tried again on another instance (up to `retries` times) and the failed instance is ejected
for `eject_for` seconds (passive health checking). After the cool-down it is used again if the registry
still lists it. Without this, about one call in eight failed across a kill -9 in our measurements.
Streaming calls are placed once: after messages have flowed a retry could repeat them.

With `breakers` (a BreakerRegistry) every attempt's outcome is recorded in its instance's circuit breaker,
and instances whose breaker is open are skipped: unlike ejection, which reacts to UNAVAILABLE alone, a
breaker opens on a failure rate (timeouts and internal errors count too) and lets trial calls through
when it half-opens. When every instance's breaker is open a call fails at once with CircuitOpenError.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from lab_services.discovery.channel import DiscoveryChannel
from lab_services.discovery.policies import InstanceStats, Policy, make_policy
from lab_services.discovery.watcher import Watcher
from lab_services.resilience.breaker import CircuitOpenError

if TYPE_CHECKING:
    from lab_services.resilience.breaker import BreakerRegistry

log = logging.getLogger(__name__)

_OK = grpc.StatusCode.OK
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


class _Future(grpc.Future):
    """A grpc.Future over a concurrent.futures.Future whose result is the response (or the RpcError raised)."""

    def __init__(self, future: concurrent.futures.Future):
        self._future = future

    def cancel(self) -> bool:
        return self._future.cancel()

    def cancelled(self) -> bool:
        return self._future.cancelled()

    def running(self) -> bool:
        return self._future.running()

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout=None):
        return self._wait(self._future.result, timeout)

    def exception(self, timeout=None):
        return self._wait(self._future.exception, timeout)

    @staticmethod
    def _wait(method, timeout):
        """Call a waiting method of the concurrent future, raising gRPC's exceptions instead of concurrent's."""
        try:
            return method(timeout)
        except concurrent.futures.TimeoutError:
            raise grpc.FutureTimeoutError() from None
        except concurrent.futures.CancelledError:
            raise grpc.FutureCancelledError() from None

    def traceback(self, timeout=None):
        error = self.exception(timeout)
        return error.__traceback__ if error is not None else None

    def add_done_callback(self, fn) -> None:
        self._future.add_done_callback(lambda _: fn(self))


class _Unary(grpc.UnaryUnaryMultiCallable, grpc.StreamUnaryMultiCallable):
    """One response: a unary request is retried elsewhere on UNAVAILABLE; a request stream is placed once,
    because its iterator cannot be replayed on another instance."""

    def __init__(self, owner: PickerChannel, key: tuple):
        self._owner, self._key = owner, key
        self._retries = 0 if key[0] == "stream_unary" else None

    def __call__(self, request, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None):
        return self.with_call(request, timeout, metadata, credentials, wait_for_ready, compression)[0]

    def with_call(self, request, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None):
        def attempt(callable_, remaining):
            return callable_.with_call(
                request,
                timeout=remaining,
                metadata=metadata,
                credentials=credentials,
                wait_for_ready=wait_for_ready,
                compression=compression,
            )

        return self._owner._call_with_retries(self._key, attempt, timeout, self._retries)

    def future(self, request, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None):
        return _Future(
            self._owner._executor.submit(
                self.__call__, request, timeout, metadata, credentials, wait_for_ready, compression
            )
        )


class _Streaming(grpc.UnaryStreamMultiCallable, grpc.StreamStreamMultiCallable):
    """Server and bidi streams: placed once; returns gRPC's own call object (an iterator and a Call)."""

    def __init__(self, owner: PickerChannel, key: tuple):
        self._owner, self._key = owner, key

    def __call__(
        self, request_or_iterator, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None
    ):
        return self._owner._start_call(
            self._key,
            lambda c: c(
                request_or_iterator,
                timeout=timeout,
                metadata=metadata,
                credentials=credentials,
                wait_for_ready=wait_for_ready,
                compression=compression,
            ),
        )


class PickerChannel(DiscoveryChannel):
    """A channel over every instance `watcher` reports, picking one per call with `policy`.

    >>> w = ConsulWatcher("user", "127.0.0.1:8500").start()
    >>> request = user_pb2.CreateUserRequest(name="Ada", email="ada@example.com")
    >>> with PickerChannel(w, policy="p2c") as channel:
    ...     user_pb2_grpc.UserServiceStub(channel).CreateUser(request).served_by
    'user-2'

    If every instance is ejected, calls go to the ejected ones anyway (a failing call beats a certain one).
    """

    def __init__(
        self,
        watcher: Watcher,
        policy: str | Policy = "round_robin",
        retries: int = 2,
        eject_for: float = 5.0,
        channel_options: list[tuple[str, Any]] | None = None,
        *,
        drain_grace: float = 5.0,
        ready_timeout: float = 5.0,
        breakers: BreakerRegistry | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        server_name: str | None = None,
    ):
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"invalid argument: retries: {retries!r}; use a whole number >= 0")
        if not isinstance(eject_for, (int, float)) or eject_for < 0:
            raise ValueError(f"invalid argument: eject_for: {eject_for!r}; use seconds >= 0, e.g. 5.0")
        super().__init__(watcher, channel_options, ready_timeout, credentials, server_name)
        self.policy = make_policy(policy)
        self.retries = retries
        self.eject_for = float(eject_for)
        self.drain_grace = drain_grace
        self.breakers = breakers
        self._lock = threading.RLock()
        self._stats: dict[str, InstanceStats] = {}
        self._channels: dict[str, grpc.Channel] = {}
        self._callables: dict[tuple, Any] = {}
        self._connectivity: list[Callable] = []
        self._closed = False
        # Attempts that ended UNAVAILABLE and were tried again elsewhere: what the retries saved.
        self.retried = 0
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="picker-future")
        self._unsubscribe = watcher.subscribe(lambda event: self._sync())
        self._sync()

    # Membership

    def _sync(self) -> None:
        """Open a channel for each new instance and retire those of instances that left."""
        instances = {i.id: i for i in self.watcher.instances()}
        retired = []
        with self._lock:
            if self._closed:
                return
            for gone in [
                i for i in self._stats if i not in instances or instances[i].address != self._stats[i].instance.address
            ]:
                self._stats.pop(gone)
                retired.append(self._channels.pop(gone))
                self._callables = {k: v for k, v in self._callables.items() if k[0] != gone}
            if self.breakers is not None:
                self.breakers.retain(instances)
            for instance_id, instance in instances.items():
                if instance_id in self._stats:
                    self._stats[instance_id].instance = instance  # tags or meta may have changed
                else:
                    self._stats[instance_id] = InstanceStats(instance)
                    self._channels[instance_id] = self._open(instance.address)
            subscribers = list(self._connectivity)
        for channel in retired:
            # Calls in flight on the old channel get `drain_grace` seconds to finish.
            timer = threading.Timer(self.drain_grace, channel.close)
            timer.daemon = True
            timer.start()
        state = self._state()
        for callback in subscribers:
            callback(state)

    def _state(self) -> grpc.ChannelConnectivity:
        with self._lock:
            return grpc.ChannelConnectivity.READY if self._stats else grpc.ChannelConnectivity.TRANSIENT_FAILURE

    def stats(self) -> dict[str, dict[str, Any]]:
        """{instance id: {"calls", "failures", "in_flight", "ejected"}} for the instances known now."""
        now = time.monotonic()
        with self._lock:
            return {
                i: {
                    "calls": s.calls,
                    "failures": s.failures,
                    "in_flight": s.in_flight,
                    "ejected": s.ejected_until > now,
                }
                for i, s in sorted(self._stats.items())
            }

    # Placing calls

    def _pick(self, key: tuple, exclude: set[str]) -> tuple[InstanceStats, Any] | None:
        self._wait_ready()
        now = time.monotonic()
        with self._lock:
            if self._closed:
                raise ValueError("Cannot invoke RPC on closed channel!")
            allowed = [s for i, s in sorted(self._stats.items()) if i not in exclude]
            if not allowed:
                return None
            chosen = self._choose(allowed, now)
            chosen.in_flight += 1
            cache_key = (chosen.id, *key)
            callable_ = self._callables.get(cache_key)
            if callable_ is None:
                kind, method, args, kwargs = key
                callable_ = getattr(self._channels[chosen.id], kind)(method, *args, **dict(kwargs))
                self._callables[cache_key] = callable_
            return chosen, callable_

    def _choose(self, allowed: list[InstanceStats], now: float) -> InstanceStats:
        """Pick among `allowed`, preferring instances not ejected, and never one whose breaker refuses the call."""
        if self.breakers is not None:
            open_ids = self.breakers.open_ids()
            allowed = [s for s in allowed if s.id not in open_ids]
        while allowed:
            healthy = [s for s in allowed if s.ejected_until <= now]
            chosen = self.policy.pick(healthy or allowed)
            # A half-open breaker lets only its trial calls through; allow() also takes the trial.
            if self.breakers is None or self.breakers.allow(chosen.id):
                return chosen
            allowed = [s for s in allowed if s is not chosen]
        retry_after = min((self.breakers.breaker(i).retry_after() for i in self._stats), default=0.0)
        raise CircuitOpenError(f"every instance of {self.watcher.service!r}", retry_after)

    def _finish(self, stats: InstanceStats, code: grpc.StatusCode | None) -> None:
        if self.breakers is not None:
            self.breakers.record(stats.id, code)
        with self._lock:
            stats.in_flight -= 1
            stats.calls += 1
            if code != _OK:
                stats.failures += 1
            if code == _UNAVAILABLE and self.eject_for > 0:
                stats.ejected_until = time.monotonic() + self.eject_for
                log.info(
                    "ejecting %s (%s) for %.1f s after UNAVAILABLE", stats.id, stats.instance.address, self.eject_for
                )

    def _call_with_retries(self, key: tuple, attempt: Callable, timeout: float | None, retries: int | None = None):
        retries = self.retries if retries is None else retries
        deadline = None if timeout is None else time.monotonic() + timeout
        tried: set[str] = set()
        error: grpc.RpcError | None = None
        for _ in range(retries + 1):
            picked = self._pick(key, tried)
            if picked is None:
                break
            stats, callable_ = picked
            tried.add(stats.id)
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                result = attempt(callable_, remaining)
            except grpc.RpcError as err:
                self._finish(stats, err.code())
                if err.code() != _UNAVAILABLE:
                    raise
                error = err
                with self._lock:
                    self.retried += 1
                continue
            except BaseException:
                self._finish(stats, None)
                raise
            self._finish(stats, _OK)
            return result
        if error is not None:
            raise error
        raise self._no_instance()

    def _start_call(self, key: tuple, start: Callable):
        picked = self._pick(key, set())
        if picked is None:
            raise self._no_instance()
        stats, callable_ = picked
        try:
            call = start(callable_)
        except BaseException:
            self._finish(stats, None)
            raise
        call.add_done_callback(lambda c: self._finish(stats, c.code()))
        return call

    # grpc.Channel

    def _multi_callable(self, key: tuple):
        return _Unary(self, key) if key[0] in ("unary_unary", "stream_unary") else _Streaming(self, key)

    def subscribe(self, callback, try_to_connect=False):
        """Calls `callback(state)` now and on every membership change: READY with instances, else TRANSIENT_FAILURE."""
        with self._lock:
            self._connectivity.append(callback)
        callback(self._state())

    def unsubscribe(self, callback):
        with self._lock:
            if callback in self._connectivity:
                self._connectivity.remove(callback)

    def close(self):
        self._unsubscribe()
        with self._lock:
            self._closed = True
            channels = list(self._channels.values())
            self._channels.clear()
            self._stats.clear()
            self._callables.clear()
        for channel in channels:
            channel.close()
        self._executor.shutdown(wait=False)
