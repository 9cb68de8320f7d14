"""Circuit breakers: stop calling an instance that keeps failing, then let a few trial calls test it again.

    breaker = CircuitBreaker(failure_threshold=5, window=10, open_for=5.0)
    if breaker.allow():
        ... make the call, then breaker.record(call.code())

CLOSED: calls flow; the breaker remembers the outcome of the last `window` calls and opens when
`failure_threshold` of them failed (threshold == window means "that many failures in a row").
OPEN: every call is refused at once, for `open_for` seconds, so a sick instance gets no load and the
caller no waiting. HALF_OPEN: up to `half_open_max_calls` trial calls go through; as many successes
close the breaker, one failure opens it again for another `open_for`.

A picker keeps one breaker per instance in a BreakerRegistry and skips the instances whose breaker is
open; a plain channel gets one with BreakerInterceptor.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import grpc

from lab_services.core.rpc_errors import LocalRpcError
from lab_services.resilience.observe import ObservingClientInterceptor

log = logging.getLogger(__name__)

# Codes that say the instance is in trouble. INVALID_ARGUMENT, NOT_FOUND and the like are answers
# about the request from a healthy instance, so they count as successes.
FAILURE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)


class State(enum.StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class Transition(NamedTuple):
    """The breaker of `name` went from `old` to `new` at clock time `at`."""

    at: float
    old: State
    new: State
    name: str = ""


class CircuitOpenError(LocalRpcError):
    """The call was not sent because the breaker is open: UNAVAILABLE, saying when to try again."""

    def __init__(self, target: str, retry_after: float):
        self.target = target
        self.retry_after = retry_after
        super().__init__(grpc.StatusCode.UNAVAILABLE, f"circuit open for {target}; retry after {retry_after:.1f} s")


def _positive_int(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"invalid argument: {field}: {value!r}; use a whole number >= 1")
    return value


class CircuitBreaker:
    """A thread-safe CLOSED / OPEN / HALF_OPEN breaker; `clock` is injectable so tests need not sleep."""

    def __init__(
        self,
        failure_threshold: int = 5,
        window: int = 10,
        open_for: float = 5.0,
        half_open_max_calls: int = 1,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
    ):
        self.failure_threshold = _positive_int("failure_threshold", failure_threshold)
        self.window = _positive_int("window", window)
        if failure_threshold > window:
            raise ValueError(
                f"invalid argument: failure_threshold: {failure_threshold}; it can be at most window ({window})"
            )
        if isinstance(open_for, bool) or not isinstance(open_for, (int, float)) or open_for < 0:
            raise ValueError(f"invalid argument: open_for: {open_for!r}; use seconds >= 0, e.g. 5.0")
        self.open_for = float(open_for)
        self.half_open_max_calls = _positive_int("half_open_max_calls", half_open_max_calls)
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state = State.CLOSED
        self._outcomes: deque[bool] = deque(maxlen=window)  # True for a failure
        self._opened_at = 0.0
        self._trials = 0  # trial calls let through while half-open
        self._trial_successes = 0
        self._subscribers: list[Callable[[Transition], None]] = []
        self.transitions: list[Transition] = []
        self.rejected = 0

    # Reading the state

    @property
    def state(self) -> State:
        """The state now; an OPEN breaker whose cool-down has passed reads (and becomes) HALF_OPEN."""
        with self._lock:
            fired = self._cool_down()
        self._notify(fired)
        return self._state

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a trial call through; 0 unless OPEN."""
        with self._lock:
            if self._state is not State.OPEN:
                return 0.0
            return max(0.0, self._opened_at + self.open_for - self._clock())

    def failures(self) -> int:
        """Failures among the last `window` calls."""
        with self._lock:
            return sum(self._outcomes)

    # The three calls a caller makes

    def allow(self) -> bool:
        """May a call go out now? False while OPEN, and while HALF_OPEN once the trial calls are taken."""
        with self._lock:
            fired = self._cool_down()
            if self._state is State.CLOSED:
                allowed = True
            elif self._state is State.HALF_OPEN and self._trials < self.half_open_max_calls:
                self._trials += 1
                allowed = True
            else:
                self.rejected += 1
                allowed = False
        self._notify(fired)
        return allowed

    def record_success(self) -> None:
        self._record(failed=False)

    def record_failure(self) -> None:
        self._record(failed=True)

    def record(self, code: grpc.StatusCode | None) -> None:
        """Record a finished call by its status code: one of FAILURE_CODES is a failure, anything else a success."""
        self._record(failed=code in FAILURE_CODES)

    def subscribe(self, callback: Callable[[Transition], None]) -> Callable[[], None]:
        """Call `callback(transition)` on every state change (outside the lock); returns an unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def reset(self) -> None:
        """Back to CLOSED with a clean window, e.g. between two runs of a lesson."""
        with self._lock:
            fired = self._move(State.CLOSED)
        self._notify(fired)

    # Internals: each runs under the lock and returns the transitions to announce once it is released.

    def _record(self, failed: bool) -> None:
        with self._lock:
            fired = self._cool_down()
            if self._state is State.HALF_OPEN:
                if failed:
                    fired += self._move(State.OPEN)
                else:
                    self._trial_successes += 1
                    if self._trial_successes >= self.half_open_max_calls:
                        fired += self._move(State.CLOSED)
            elif self._state is State.CLOSED:
                self._outcomes.append(failed)
                if failed and sum(self._outcomes) >= self.failure_threshold:
                    fired += self._move(State.OPEN)
            # A call that was let through before the breaker opened may finish while it is OPEN: ignore it.
        self._notify(fired)

    def _cool_down(self) -> list[Transition]:
        if self._state is State.OPEN and self._clock() - self._opened_at >= self.open_for:
            return self._move(State.HALF_OPEN)
        return []

    def _move(self, new: State) -> list[Transition]:
        old = self._state
        if old is new:
            return []
        self._state = new
        now = self._clock()
        if new is State.OPEN:
            self._opened_at = now
        if new is State.HALF_OPEN:
            self._trials = self._trial_successes = 0
        if new is State.CLOSED:
            self._outcomes.clear()
        transition = Transition(now, old, new, self.name)
        self.transitions.append(transition)
        return [transition]

    def _notify(self, fired: list[Transition]) -> None:
        if not fired:
            return
        with self._lock:
            subscribers = list(self._subscribers)
        for transition in fired:
            log.info("breaker %s: %s -> %s", transition.name or "?", transition.old, transition.new)
            for callback in subscribers:
                callback(transition)

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self._state}, failures={sum(self._outcomes)}/{self.window})"


class BreakerRegistry:
    """One CircuitBreaker per instance id, made on first use with the same settings.

    The interface a picker needs: `allow(id)` before a call, `record(id, code)` after it, and
    `open_ids()` to skip instances without using up a half-open trial call.
    """

    def __init__(self, **settings: Any):
        CircuitBreaker(**settings)  # check the settings now rather than at the first call
        self._settings = settings
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._subscribers: list[Callable[[Transition], None]] = []

    def breaker(self, instance_id: str) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(instance_id)
            if breaker is None:
                breaker = self._breakers[instance_id] = CircuitBreaker(name=instance_id, **self._settings)
                for callback in self._subscribers:
                    breaker.subscribe(callback)
            return breaker

    def allow(self, instance_id: str) -> bool:
        return self.breaker(instance_id).allow()

    def record(self, instance_id: str, code: grpc.StatusCode | None) -> None:
        self.breaker(instance_id).record(code)

    def open_ids(self) -> set[str]:
        """Instances whose breaker is OPEN now (a cooled-down one reads HALF_OPEN and is not in the set)."""
        with self._lock:
            breakers = list(self._breakers.items())
        return {i for i, b in breakers if b.state is State.OPEN}

    def retain(self, instance_ids: Iterable[str]) -> None:
        """Forget the breakers of instances that left the registry."""
        keep = set(instance_ids)
        with self._lock:
            self._breakers = {i: b for i, b in self._breakers.items() if i in keep}

    def subscribe(self, callback: Callable[[Transition], None]) -> None:
        """Call `callback(transition)` on every state change of every breaker, present and future."""
        with self._lock:
            self._subscribers.append(callback)
            breakers = list(self._breakers.values())
        for breaker in breakers:
            breaker.subscribe(callback)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """{instance id: {"state", "failures", "rejected", "retry_after"}} for a lesson's table."""
        with self._lock:
            breakers = sorted(self._breakers.items())
        return {
            i: {
                "state": str(b.state),
                "failures": b.failures(),
                "rejected": b.rejected,
                "retry_after": round(b.retry_after(), 2),
            }
            for i, b in breakers
        }


def breakers_for(instances: Iterable[Any], **settings: Any) -> BreakerRegistry:
    """A BreakerRegistry with a breaker for each instance (an id string or anything with an `.id`)."""
    registry = BreakerRegistry(**settings)
    for instance in instances:
        registry.breaker(instance if isinstance(instance, str) else instance.id)
    return registry


class BreakerInterceptor(ObservingClientInterceptor):
    """Guards a plain channel with one breaker: while it is open, calls fail at once with UNAVAILABLE, unsent.

    channel = grpc.intercept_channel(grpc.insecure_channel(address), BreakerInterceptor(breaker, address))
    """

    def __init__(self, breaker: CircuitBreaker, target: str = ""):
        self.breaker = breaker
        self.target = target or breaker.name or "this channel"

    def _before(self, client_call_details):
        if not self.breaker.allow():
            return CircuitOpenError(self.target, self.breaker.retry_after())
        return None

    def _observe(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        self.breaker.record(code)
