"""Lesson 07's deadline propagation: a gateway in front of the user service passing the caller's deadline on, or not.

    upstream = UserServer().start()
    gateway = GatewayServer(upstream.address, propagate=True).start()
    stub = user_pb2_grpc.UserServiceStub(grpc.insecure_channel(gateway.address))

With propagate=True each forwarded call gets the time the caller has left (context.time_remaining())
and is cancelled if the caller cancels, so when the caller gives up the upstream call ends too. With
propagate=False the gateway waits up to `fixed_timeout` seconds, and the upstream goes on working for
a caller that is long gone: `deadline_experiment` counts those wasted completions.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc

from lab_services._proto.lab.user.v1 import user_service_pb2_grpc as pb_grpc
from lab_services.core.network import kernel_host, require_lab_host
from lab_services.lessons.resilience.measure import create_user_call, run_calls, server_codes, wait_idle
from lab_services.resilience.deadlines import remaining_deadline

if TYPE_CHECKING:
    from lab_services.service import UserServer

log = logging.getLogger(__name__)


class _Gateway(pb_grpc.UserServiceServicer):
    """Forwards GetUser and CreateUser; every other method answers UNIMPLEMENTED."""

    def __init__(self, owner: GatewayServer):
        self._owner = owner

    def GetUser(self, request, context):
        return self._owner.forward("GetUser", request, context)

    def CreateUser(self, request, context):
        return self._owner.forward("CreateUser", request, context)


class GatewayServer:
    """A UserService front end that forwards to `upstream_address`, propagating the deadline or not."""

    def __init__(
        self,
        upstream_address: str,
        propagate: bool = True,
        fixed_timeout: float = 30.0,
        host: str | None = None,
        port: int = 0,
        interceptors: list[grpc.ServerInterceptor] | None = None,
    ):
        self.upstream_address = upstream_address
        self.propagate = propagate
        self.fixed_timeout = fixed_timeout
        self.host = kernel_host() if host is None else require_lab_host(host)
        self.requested_port = port
        self.interceptors = interceptors or []
        self.port = 0
        # (method, timeout sent upstream): what the lesson shows to prove the deadline shrinks hop by hop.
        self.forwarded: list[tuple[str, float | None]] = []
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.UserServiceStub | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> GatewayServer:
        self._channel = grpc.insecure_channel(self.upstream_address)
        self._stub = pb_grpc.UserServiceStub(self._channel)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="gateway"),
            interceptors=self.interceptors,
            options=[("grpc.so_reuseport", 0)],
        )
        pb_grpc.add_UserServiceServicer_to_server(_Gateway(self), server)
        self.port = server.add_insecure_port(f"{self.host}:{self.requested_port}")
        server.start()
        self._server = server
        log.info("gateway on %s forwarding to %s (propagate=%s)", self.address, self.upstream_address, self.propagate)
        return self

    def stop(self, grace: float | None = 1.0) -> None:
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop(0)

    def forward(self, method: str, request, context: grpc.ServicerContext):
        """Call `method` upstream and answer with its response, or with its status code and details."""
        timeout = remaining_deadline(context) if self.propagate else self.fixed_timeout
        with self._lock:
            self.forwarded.append((method, timeout))
        call = getattr(self._stub, method).future(request, timeout=timeout)
        if self.propagate:
            context.add_callback(call.cancel)  # the caller cancelled or ran out of time: so do we
        try:
            return call.result()
        except grpc.FutureCancelledError:
            context.abort(grpc.StatusCode.CANCELLED, f"{method} cancelled by the caller")
        except grpc.RpcError as error:
            # Aborting before sending any response keeps the answer "trailers only", so the caller's
            # retryPolicy may still retry it (a call is committed once response headers arrive).
            context.abort(error.code(), error.details())


def deadline_experiment(
    upstream: UserServer, propagate: bool, calls: int = 3, timeout: float = 0.2, latency_ms: float = 600
) -> dict[str, Any]:
    """Calls with a `timeout` deadline through a gateway to an upstream slowed to `latency_ms`.

    Returns what the client saw, what the upstream recorded for its calls once they finished (OK: it
    answered a caller that had given up; CANCELLED: the deadline reached it too), and the timeouts the
    gateway forwarded. `users_written` is the work the upstream really did: the users its store gained. The
    service checks that its caller is still there after the injected delay (servicer `_call`), so with
    propagation the write is skipped; without it, every write happens for a caller long gone.
    """
    previous = upstream.faults.current
    upstream.faults.set(latency_ms=latency_ms, error_rate=0)
    before = server_codes(upstream, "CreateUser")
    users_before = len(upstream.store.list())
    try:
        with (
            GatewayServer(upstream.address, propagate=propagate) as gateway,
            grpc.insecure_channel(gateway.address) as channel,
        ):
            started = time.monotonic()
            client = run_calls(create_user_call(channel, timeout), calls)
            client_seconds = time.monotonic() - started
            wait_idle(upstream)
            forwarded = [t for _, t in gateway.forwarded]
    finally:
        upstream.faults.set(latency_ms=previous.latency_ms, error_rate=previous.error_rate)
    upstream_codes = server_codes(upstream, "CreateUser") - before
    return {
        "propagate": propagate,
        "client_codes": dict(client),
        "client_seconds": round(client_seconds, 3),
        "upstream_codes": dict(upstream_codes),
        "upstream_completed": sum(
            n for code, n in upstream_codes.items() if code not in ("CANCELLED", "DEADLINE_EXCEEDED")
        ),
        "users_written": len(upstream.store.list()) - users_before,
        "forwarded_timeouts": [None if t is None else round(t, 3) for t in forwarded],
    }
