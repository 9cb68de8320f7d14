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
        with self.tracer.start_as_current_span(details.method.rsplit("/", 1)[-1], kind=SpanKind.CLIENT) as span:
            carrier: dict[str, str] = {}
            PROPAGATOR.inject(carrier)
            metadata = [*(details.metadata or []), *carrier.items()]
            span.set_attribute("rpc.method", details.method)
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
            span.set_attribute("rpc.grpc.status_code", code.name)
            if code != grpc.StatusCode.OK:
                span.set_status(Status(StatusCode.ERROR, code.name))
            return outcome


class ServerTracing(grpc.ServerInterceptor):
    """A SERVER span for each unary call, the child of the caller's span named in its `traceparent`."""

    def __init__(self, tracer: trace.Tracer, instance: str = ""):
        self.tracer = tracer
        self.instance = instance

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        method, inner = details.method, handler.unary_unary

        def traced(request: Any, context: grpc.ServicerContext) -> Any:
            metadata = dict(context.invocation_metadata())
            parent = PROPAGATOR.extract(metadata)
            with self.tracer.start_as_current_span(
                method.rsplit("/", 1)[-1],
                context=parent,
                kind=SpanKind.SERVER,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                span.set_attribute("rpc.method", method)
                span.set_attribute("traceparent.received", metadata.get("traceparent", ""))
                if self.instance:
                    span.set_attribute("lab.instance", self.instance)
                remaining = context.time_remaining()
                if remaining is not None and remaining < 1e6:  # no deadline reads as a huge number
                    span.set_attribute("rpc.deadline_remaining_ms", round(remaining * 1000, 1))
                try:
                    return inner(request, context)
                finally:
                    code = context.code()
                    if code not in (None, grpc.StatusCode.OK):
                        span.set_status(Status(StatusCode.ERROR, code.name))
                        span.set_attribute("rpc.grpc.status_code", code.name)

        return grpc.unary_unary_rpc_method_handler(
            traced, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )
