"""A real OTLP/gRPC trace endpoint on kernel_host() that keeps the spans it receives, for lessons and tests to read."""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from lab_services.core.network import kernel_host, require_lab_host
from lab_services.core.wait import wait_until
from lab_services.tracing.interceptors import STATUS_NAMES

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _value(any_value: Any) -> Any:
    which = any_value.WhichOneof("value")
    return (
        getattr(any_value, which)
        if which in ("string_value", "int_value", "bool_value", "double_value")
        else str(any_value)
    )


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived over OTLP: ids in hex, times in ns since the epoch, its service from the resource."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    service: str
    kind: str
    start_ns: int
    end_ns: int
    error: bool
    status_message: str
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)

    @property
    def ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def grpc_status(self) -> str:
        """The call's gRPC status by name ('OK', 'UNAVAILABLE'), from its integer `rpc.grpc.status_code`; '' for a
        span that is not a gRPC call."""
        code = self.attributes.get("rpc.grpc.status_code")
        return STATUS_NAMES.get(code, str(code)) if code is not None else ""


class OtlpReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Serves `opentelemetry.proto.collector.trace.v1.TraceService/Export`, as a collector's OTLP receiver does."""

    def __init__(self, host: str | None = None, port: int = 0):
        self.host = kernel_host() if host is None else require_lab_host(host)
        self.requested_port = port
        self.port = 0
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> OtlpReceiver:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="otlp"))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, server)
        self.port = server.add_insecure_port(f"{self.host}:{self.requested_port}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=1.0).wait()
            self._server = None

    def Export(self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext):
        received = []
        for resource_spans in request.resource_spans:
            service = _attributes(resource_spans.resource.attributes).get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            name=span.name,
                            service=service,
                            kind=KINDS.get(span.kind, str(span.kind)),
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            error=span.status.code == 2,
                            status_message=span.status.message,
                            attributes=_attributes(span.attributes),
                            events=[(e.name, e.time_unix_nano, _attributes(e.attributes)) for e in span.events],
                        )
                    )
        with self._lock:
            self._spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self, trace_id: str | None = None) -> list[ReceivedSpan]:
        """Every span received (of one trace, when `trace_id` is given), in start order."""
        with self._lock:
            chosen = [s for s in self._spans if trace_id is None or s.trace_id == trace_id]
        return sorted(chosen, key=lambda s: s.start_ns)

    def wait_for_trace(self, trace_id: str, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """The trace's spans once at least `count` have arrived (exports are batched, so they trickle in)."""
        wait_until(
            lambda: len(self.spans(trace_id)) >= count,
            timeout,
            f"{count} spans of trace {trace_id}",
            seen=lambda: f"{len(self.spans(trace_id))} so far",
        )
        return self.spans(trace_id)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()
