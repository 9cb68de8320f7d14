"""Client and server interceptors for the lessons: call logging, bearer-token auth, per-method client stats.

    log = CallLog()
    stats = ClientStats()
    channel = grpc.intercept_channel(grpc.insecure_channel(address),
                                     BearerToken("s3cret"), ClientLogging(log), stats)
    server = grpc.server(executor, interceptors=[ServerLogging(log), RequireBearerToken("s3cret")])

Client interceptors work on all four call kinds; server ones wrap every handler.
"""

from __future__ import annotations

import hmac
import logging
import math
import statistics
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any, NamedTuple

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection

from lab_services.core.wire import AUTHORIZATION_HEADER
from lab_services.resilience.observe import ObservingClientInterceptor, with_metadata
from lab_services.service.interceptors import Behavior, final_code, split_method, wrap_handler

log = logging.getLogger(__name__)

# Health checks come from Consul and load balancers, reflection from grpcurl: neither carries our token.
EXEMPT_SERVICES = frozenset(
    {
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
        "grpc.reflection.v1.ServerReflection",
    }
)


class CallRecord(NamedTuple):
    side: str  # "client" or "server"
    method: str
    code: str
    seconds: float
    at: float  # time.time() when the call finished


class CallLog:
    """The last `maxlen` calls, newest last, for a lesson to show as a table; also written to `logging`."""

    def __init__(self, maxlen: int = 200, logger: logging.Logger = log):
        self._records: deque[CallRecord] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._logger = logger

    def add(self, side: str, method: str, code: grpc.StatusCode, seconds: float) -> None:
        record = CallRecord(side, method, code.name, seconds, time.time())
        with self._lock:
            self._records.append(record)
        level = logging.INFO if code is grpc.StatusCode.OK else logging.WARNING
        self._logger.log(level, "%s %s %s in %.1f ms", side, method, code.name, seconds * 1000)

    def records(self) -> list[CallRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class ClientLogging(ObservingClientInterceptor):
    """Logs method, status code and duration of every call this client makes."""

    def __init__(self, call_log: CallLog | None = None):
        self.log = call_log if call_log is not None else CallLog()

    def _observe(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        self.log.add("client", method, code, seconds)


class ServerLogging(grpc.ServerInterceptor):
    """Logs method, status code and duration of every call this server handles."""

    def __init__(self, call_log: CallLog | None = None):
        self.log = call_log if call_log is not None else CallLog()

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        call_log = self.log

        def wrap(behavior: Behavior, streaming: bool) -> Behavior:
            def logged_unary(request, context):
                started = time.perf_counter()
                try:
                    response = behavior(request, context)
                except BaseException as exc:
                    call_log.add("server", method, final_code(context, exc), time.perf_counter() - started)
                    raise
                call_log.add("server", method, final_code(context, None), time.perf_counter() - started)
                return response

            def logged_stream(request, context):
                started = time.perf_counter()
                try:
                    yield from behavior(request, context)
                except BaseException as exc:
                    call_log.add("server", method, final_code(context, exc), time.perf_counter() - started)
                    raise
                call_log.add("server", method, final_code(context, None), time.perf_counter() - started)

            return logged_stream if streaming else logged_unary

        return wrap_handler(continuation(handler_call_details), wrap)


class BearerToken(ObservingClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call."""

    def __init__(self, token: str):
        if not token or any(c.isspace() for c in token):
            raise ValueError(f"invalid argument: token: {token!r}; use a non-empty string without spaces")
        self._header = (AUTHORIZATION_HEADER, f"Bearer {token}")

    def _before(self, client_call_details):
        return with_metadata(client_call_details, self._header)


class RequireBearerToken(grpc.ServerInterceptor):
    """Refuses calls without a valid `authorization: Bearer <token>` with UNAUTHENTICATED.

    `tokens` is one accepted token or several (to rotate one without downtime). Services in `exempt`
    (health and reflection by default) need no token.
    """

    def __init__(self, tokens: str | Iterable[str], exempt: Iterable[str] = EXEMPT_SERVICES):
        self._tokens = [t.encode() for t in ([tokens] if isinstance(tokens, str) else tokens)]
        if not self._tokens or not all(self._tokens):
            raise ValueError("invalid argument: tokens: empty; pass at least one non-empty token")
        self._exempt = frozenset(exempt)

    def _problem(self, metadata) -> str | None:
        values = [v for k, v in metadata or () if k == AUTHORIZATION_HEADER]
        scheme, _, token = (values[0] if values else "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "missing bearer token"
        # compare_digest takes the same time whichever character differs, so timing does not leak the token.
        if not any(hmac.compare_digest(token.encode(), t) for t in self._tokens):
            return "invalid bearer token"
        return None

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if split_method(handler_call_details.method)[0] in self._exempt:
            return handler
        problem = self._problem(handler_call_details.invocation_metadata)
        if problem is None:
            return handler

        def wrap(_behavior: Behavior, _streaming: bool) -> Behavior:
            def refuse(_request, context: grpc.ServicerContext):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)

            return refuse

        return wrap_handler(handler, wrap)


def _percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


class ClientStats(ObservingClientInterceptor):
    """Counts calls per method: how many, which status codes, and latency percentiles of the last `keep`.

    stats = ClientStats()
    stub = user_pb2_grpc.UserServiceStub(grpc.intercept_channel(channel, stats))
    stats.snapshot()["/lab.user.v1.UserService/GetUser"]
    {'count': 200, 'codes': {'OK': 187, 'UNAVAILABLE': 13}, 'p50_ms': 0.9, 'p95_ms': 2.1, 'mean_ms': 1.1}
    """

    def __init__(self, keep: int = 10_000):
        self._keep = keep
        self._lock = threading.Lock()
        self._count: Counter[str] = Counter()
        self._codes: dict[str, Counter[str]] = {}
        self._seconds: dict[str, deque[float]] = {}

    def _observe(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        with self._lock:
            self._count[method] += 1
            self._codes.setdefault(method, Counter())[code.name] += 1
            self._seconds.setdefault(method, deque(maxlen=self._keep)).append(seconds)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """{method: {"count", "codes", "p50_ms", "p95_ms", "mean_ms"}}."""
        with self._lock:
            data = {m: (n, dict(self._codes[m]), sorted(self._seconds[m])) for m, n in self._count.items()}
        return {
            method: {
                "count": count,
                "codes": codes,
                "p50_ms": round(_percentile(seconds, 0.50) * 1000, 3),
                "p95_ms": round(_percentile(seconds, 0.95) * 1000, 3),
                "mean_ms": round(statistics.fmean(seconds) * 1000, 3),
            }
            for method, (count, codes, seconds) in sorted(data.items())
        }

    def latencies(self, method: str) -> list[float]:
        """The recorded durations of `method` in seconds, oldest first, for a histogram."""
        with self._lock:
            return list(self._seconds.get(method, ()))

    def reset(self) -> None:
        with self._lock:
            self._count.clear()
            self._codes.clear()
            self._seconds.clear()
