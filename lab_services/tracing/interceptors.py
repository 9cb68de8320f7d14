"""gRPC interceptors that put each call in a span and carry the trace across processes in metadata.

The client injects W3C `traceparent` (`00-<trace id>-<span id>-01`) into the call's metadata; the server
extracts it and starts its span as that span's child, so one trace spans every service a request touches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

PROPAGATOR = TraceContextTextMapPropagator()
# gRPC's status codes by number: OpenTelemetry records `rpc.grpc.status_code` as the integer (0 OK, 14 UNAVAILABLE).
STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def rpc_span(full_method: str) -> tuple[str, dict[str, str]]:
    """A span's name and attributes for a gRPC call by OpenTelemetry's RPC semantic conventions: named
    `package.Service/Method`, with `rpc.system` grpc, `rpc.service` the full service name and `rpc.method` the method
    (from a gRPC path such as `/lab.user.v1.UserService/GetUser`)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return f"{service}/{method}", {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any


class _Details(_CallDetails, grpc.ClientCallDetails):
    """grpc.ClientCallDetails with the trace context added to its metadata."""


class ClientTracing(grpc.UnaryUnaryClientInterceptor):
    """A CLIENT span around each unary call, its context injected as `traceparent`, its status code recorded."""

    def __init__(self, tracer: trace.Tracer, peer: str = ""):
        self.tracer = tracer
        self.peer = peer

    def intercept_unary_unary(self, continuation: Callable, details: grpc.ClientCallDetails, request: Any) -> Any:
        name, attributes = rpc_span(details.method)
        with self.tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes) as span:
            carrier: dict[str, str] = {}
            PROPAGATOR.inject(carrier)
            metadata = [*(details.metadata or []), *carrier.items()]
            if self.peer:
                span.set_attribute("net.peer", self.peer)
            if details.timeout is not None:
                span.set_attribute("rpc.timeout_ms", round(details.timeout * 1000, 1))
            outcome = continuation(
                _Details(
                    details.method,
                    details.timeout,
                    metadata,
                    details.credentials,
                    details.wait_for_ready,
                    details.compression,
                ),
                request,
            )
            code = outcome.code()
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code != grpc.StatusCode.OK:
                span.set_status(Status(StatusCode.ERROR, code.name))
            return outcome


class ServerTracing(grpc.ServerInterceptor):
    """A SERVER span for each unary call, the child of the caller's span named in its `traceparent`.

    `annotate(span, request)`, when set, runs inside the span before the handler: the place a service adds
    attributes of its own (which user was asked for, a tenant), as an application would with its own code.
    """

    def __init__(self, tracer: trace.Tracer, instance: str = "", annotate: Callable[[Any, Any], None] | None = None):
        self.tracer = tracer
        self.instance = instance
        self.annotate = annotate

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        (name, attributes), inner = rpc_span(details.method), handler.unary_unary

        def traced(request: Any, context: grpc.ServicerContext) -> Any:
            metadata = dict(context.invocation_metadata())
            parent = PROPAGATOR.extract(metadata)
            with self.tracer.start_as_current_span(
                name,
                context=parent,
                kind=SpanKind.SERVER,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                span.set_attribute("traceparent.received", metadata.get("traceparent", ""))
                if self.instance:
                    span.set_attribute("lab.instance", self.instance)
                remaining = context.time_remaining()
                if remaining is not None and remaining < 1e6:  # no deadline reads as a huge number
                    span.set_attribute("rpc.deadline_remaining_ms", round(remaining * 1000, 1))
                if self.annotate is not None:
                    self.annotate(span, request)
                try:
                    return inner(request, context)
                finally:
                    code = context.code() or grpc.StatusCode.OK  # None: the handler returned without setting one
                    span.set_attribute("rpc.grpc.status_code", code.value[0])
                    if code != grpc.StatusCode.OK:
                        span.set_status(Status(StatusCode.ERROR, code.name))

        return grpc.unary_unary_rpc_method_handler(
            traced, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )
