"""The `gateway` sample service: it serves GetUser by calling the user service, with retries and a deadline,
and traces every step, so one request makes a trace across two services."""
from __future__ import annotations

import itertools
import threading
from concurrent import futures

import grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from lab_services.core.ports import require_loopback
from lab_services.service import user_pb2, user_pb2_grpc
from lab_services.tracing.interceptors import ClientTracing, ServerTracing

RETRYABLE = (grpc.StatusCode.UNAVAILABLE,)


class Gateway(user_pb2_grpc.UserServiceServicer):
    """GetUser through the user instances in turn: an UNAVAILABLE attempt is retried on the next instance.

    Each attempt gets at most `per_try_timeout`, and never more than what is left of the caller's deadline,
    so the caller's deadline travels on to the user service (as `grpc-timeout`, shrinking at every hop).
    """

    def __init__(self, targets: dict[str, str], provider: TracerProvider, attempts: int = 3, per_try_timeout: float = 1.0):
        if not targets:
            raise ValueError("invalid argument: targets: the gateway needs at least one user instance")
        if not 1 <= attempts <= 5:
            raise ValueError(f"invalid argument: attempts: {attempts}; use 1 to 5")
        self.tracer = provider.get_tracer("lab.gateway")
        self.attempts, self.per_try_timeout = attempts, per_try_timeout
        # `targets` maps an instance name to its address; the name labels the attempt's span and events.
        self.names = list(targets)
        self.stubs = [user_pb2_grpc.UserServiceStub(grpc.intercept_channel(grpc.insecure_channel(address), ClientTracing(self.tracer, name)))
                      for name, address in targets.items()]
        self._turn = itertools.cycle(range(len(targets)))
        self._lock = threading.Lock()

    def GetUser(self, request: user_pb2.GetUserRequest, context: grpc.ServicerContext) -> user_pb2.User:  # noqa: N802
        span = trace.get_current_span()
        last: grpc.RpcError | None = None
        for attempt in range(1, self.attempts + 1):
            remaining = context.time_remaining()
            timeout = self.per_try_timeout if remaining is None else min(self.per_try_timeout, remaining)
            if timeout <= 0:
                break
            with self._lock:
                index = next(self._turn)
            span.add_event("attempt", {"attempt": attempt, "instance": self.names[index], "timeout_ms": round(timeout * 1000, 1)})
            try:
                return self.stubs[index].GetUser(request, timeout=timeout)
            except grpc.RpcError as err:
                last = err
                span.add_event("attempt failed", {"attempt": attempt, "code": err.code().name})
                if err.code() not in RETRYABLE:
                    break
        code = last.code() if last is not None else grpc.StatusCode.DEADLINE_EXCEEDED
        context.abort(code, f"gateway: {last.details() if last is not None else 'no time left for an attempt'}")


class GatewayServer:
    """The gateway on its own gRPC port, with a SERVER span per call (its caller's trace continues here)."""

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 0):
        self.gateway = gateway
        self.host = require_loopback(host)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="gateway"),
                                   interceptors=[ServerTracing(gateway.tracer, "gateway")])
        user_pb2_grpc.add_UserServiceServicer_to_server(gateway, self._server)
        self.port = self._server.add_insecure_port(f"{self.host}:{port}")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "GatewayServer":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=1.0).wait()
