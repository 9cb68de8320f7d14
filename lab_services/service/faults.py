"""Injected faults (added latency, error rate) and the server interceptor that applies them.

Lessons on retries and circuit breakers turn these knobs through the admin HTTP port. Faults hit only
the user service, not the health service, so a high error rate teaches retries without also making
Consul mark the instance critical; health is flipped separately, on purpose.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import asdict, dataclass

import grpc

from lab_services.core.errors import BadInputError
from lab_services.service.interceptors import Behavior, split_method, wrap_handler


class InvalidFault(BadInputError):
    """A fault setting is out of range; the message starts with the field name."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field


@dataclass(frozen=True)
class Faults:
    latency_ms: float = 0.0
    error_rate: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _number(field: str, value: object) -> float:
    # bool is an int in Python, but `"error_rate": true` is a mistake worth reporting.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidFault(field, f"must be a finite number, got {value!r}")
    return float(value)


class FaultInjector:
    """Thread-safe fault settings; apply() delays and maybe fails the current call."""

    def __init__(self, rng: random.Random | None = None):
        self._lock = threading.Lock()
        self._faults = Faults()
        self._rng = rng or random.Random()

    @property
    def current(self) -> Faults:
        with self._lock:
            return self._faults

    def set(self, latency_ms: float | None = None, error_rate: float | None = None) -> Faults:
        """Change the given settings (None keeps the current value); raise InvalidFault naming the field."""
        with self._lock:
            faults = self._faults
            if latency_ms is not None:
                latency_ms = _number("latency_ms", latency_ms)
                if latency_ms < 0:
                    raise InvalidFault("latency_ms", f"must be >= 0, got {latency_ms:g}")
                faults = Faults(latency_ms, faults.error_rate)
            if error_rate is not None:
                error_rate = _number("error_rate", error_rate)
                if not 0 <= error_rate <= 1:
                    raise InvalidFault("error_rate", f"must be between 0 and 1, got {error_rate:g}")
                faults = Faults(faults.latency_ms, error_rate)
            self._faults = faults
            return faults

    def draw(self) -> tuple[float, str | None]:
        """For one call: seconds to delay it, and the UNAVAILABLE details to fail it with (None: let it through).

        Both servers use it; the thread server sleeps, the asyncio one awaits, so latency never blocks its loop.
        """
        faults = self.current
        failed = bool(faults.error_rate) and self._rng.random() < faults.error_rate
        return faults.latency_ms / 1000, f"injected fault (error_rate={faults.error_rate:g})" if failed else None

    def apply(self, context: grpc.ServicerContext) -> None:
        """Sleep for the latency, then abort with UNAVAILABLE with probability error_rate."""
        delay, error = self.draw()
        if delay:
            time.sleep(delay)
        if error:
            context.abort(grpc.StatusCode.UNAVAILABLE, error)


class FaultInterceptor(grpc.ServerInterceptor):
    """Applies a FaultInjector before each call to one service (the user service)."""

    def __init__(self, injector: FaultInjector, service: str):
        self._injector = injector
        self._service = service

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if split_method(handler_call_details.method)[0] != self._service:
            return handler

        def wrap(behavior: Behavior, _streaming: bool) -> Behavior:
            def faulty(request, context: grpc.ServicerContext):
                self._injector.apply(context)
                return behavior(request, context)

            return faulty

        return wrap_handler(handler, wrap)
