"""The `gateway` sample service: it serves GetUser by calling the user service, with retries and a deadline,
and traces every step, so one request makes a trace across two services. It finds the user instances either
at fixed addresses or through discovery (a watcher on Consul), as a real second service would."""

from __future__ import annotations

import itertools
import threading
from concurrent import futures

import grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from lab_services.core.network import kernel_host, require_lab_host
from lab_services.discovery import ServiceInstance, Watcher
from lab_services.service import user_pb2, user_pb2_grpc
from lab_services.tracing.interceptors import ClientTracing, ServerTracing

RETRYABLE = (grpc.StatusCode.UNAVAILABLE,)
LABEL_META = "instance"  # a registration's meta key naming the instance in spans, when its service id says more


def instance_label(instance: ServiceInstance) -> str:
    """What the attempt's span and events call a discovered instance: its `instance` meta, else its service id."""
    return instance.meta.get(LABEL_META) or instance.id


class Gateway(user_pb2_grpc.UserServiceServicer):
    """GetUser through the user instances in turn: an UNAVAILABLE attempt is retried on the next instance.

    Each attempt gets at most `per_try_timeout`, and never more than what is left of the caller's deadline,
    so the caller's deadline travels on to the user service (as `grpc-timeout`, shrinking at every hop).
    """

    def __init__(
        self,
        targets: dict[str, str] | Watcher,
        provider: TracerProvider,
        attempts: int = 3,
        per_try_timeout: float = 1.0,
    ):
        """`targets`: {instance name: address}, fixed; or a started Watcher, whose current passing instances every
        attempt picks from (so instances that join, leave or fail their checks are followed without a restart)."""
        if not isinstance(targets, Watcher) and not targets:
            raise ValueError("invalid argument: targets: the gateway needs at least one user instance, or a watcher")
        if not 1 <= attempts <= 5:
            raise ValueError(f"invalid argument: attempts: {attempts}; use 1 to 5")
        self.tracer = provider.get_tracer("lab.gateway")
        self.attempts, self.per_try_timeout = attempts, per_try_timeout
        self.watcher = targets if isinstance(targets, Watcher) else None
        self._fixed = {} if self.watcher is not None else dict(targets)
        # One traced channel per (name, address): the name labels the attempt's span (`net.peer`) and events.
        self._channels: dict[tuple[str, str], grpc.Channel] = {}
        self._stubs: dict[tuple[str, str], user_pb2_grpc.UserServiceStub] = {}
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def targets(self) -> dict[str, str]:
        """The user instances an attempt may go to now: {name: address}, sorted by name."""
        if self.watcher is None:
            return self._fixed
        return dict(sorted((instance_label(i), i.address) for i in self.watcher.instances()))

    def _next(self) -> tuple[str, user_pb2_grpc.UserServiceStub] | None:
        """Round robin over the current targets; None when there is none."""
        targets = self.targets()
        if not targets:
            return None
        with self._lock:
            name = list(targets)[next(self._turn) % len(targets)]
            key = (name, targets[name])
            if key not in self._stubs:
                self._channels[key] = grpc.intercept_channel(
                    grpc.insecure_channel(key[1]), ClientTracing(self.tracer, name)
                )
                self._stubs[key] = user_pb2_grpc.UserServiceStub(self._channels[key])
            return name, self._stubs[key]

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()
            self._stubs.clear()

    def GetUser(self, request: user_pb2.GetUserRequest, context: grpc.ServicerContext) -> user_pb2.User:
        span = trace.get_current_span()
        last: grpc.RpcError | None = None
        for attempt in range(1, self.attempts + 1):
            remaining = context.time_remaining()
            timeout = self.per_try_timeout if remaining is None else min(self.per_try_timeout, remaining)
            if timeout <= 0:
                break
            picked = self._next()
            if picked is None:
                span.add_event("no instance", {"attempt": attempt})
                context.abort(
                    grpc.StatusCode.UNAVAILABLE,
                    f"gateway: {self.watcher.where if self.watcher else 'no target'} lists no passing user instance",
                )
            name, stub = picked
            span.add_event("attempt", {"attempt": attempt, "instance": name, "timeout_ms": round(timeout * 1000, 1)})
            try:
                return stub.GetUser(request, timeout=timeout)
            except grpc.RpcError as err:
                last = err
                span.add_event("attempt failed", {"attempt": attempt, "code": err.code().name})
                if err.code() not in RETRYABLE:
                    break
        code = last.code() if last is not None else grpc.StatusCode.DEADLINE_EXCEEDED
        context.abort(code, f"gateway: {last.details() if last is not None else 'no time left for an attempt'}")


class GatewayServer:
    """The gateway on its own gRPC port, with a SERVER span per call (its caller's trace continues here)."""

    def __init__(self, gateway: Gateway, host: str | None = None, port: int = 0):
        self.gateway = gateway
        self.host = kernel_host() if host is None else require_lab_host(host)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="gateway"),
            interceptors=[ServerTracing(gateway.tracer, "gateway")],
        )
        user_pb2_grpc.add_UserServiceServicer_to_server(gateway, self._server)
        self.port = self._server.add_insecure_port(f"{self.host}:{port}")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> GatewayServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=1.0).wait()
        self.gateway.close()
