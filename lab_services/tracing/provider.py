"""One TracerProvider per service: its spans carry `service.name` and go out over OTLP/gRPC in batches."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from lab_services.core.addresses import host_port
from lab_services.core.network import require_lab_host


def tracer_provider(service: str, endpoint: str, batch_delay_ms: int = 200) -> TracerProvider:
    """A provider for `service` exporting to the OTLP receiver at `endpoint` (host:port, plaintext, loopback).

    Batching is what production does (one export per batch, off the request path); `force_flush()` before
    reading the receiver makes a lesson's trace complete without waiting for the batch timer.
    """
    if not service:
        raise ValueError("invalid argument: service: a tracer provider needs a service name")
    host, port = host_port(endpoint, "endpoint", "127.0.0.1:4317")
    require_lab_host(host, "endpoint")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"http://{host}:{port}", insecure=True)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=batch_delay_ms))
    return provider
