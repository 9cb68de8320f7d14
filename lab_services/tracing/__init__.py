"""Distributed tracing for the lab's gRPC services: OpenTelemetry spans, W3C `traceparent` carried in gRPC
metadata by client and server interceptors, exported over OTLP to a receiver the lab runs itself.

No OpenTelemetry Collector or Jaeger binary exists in the lab's package registries (docs/architecture.md), so
`OtlpReceiver` is a real OTLP/gRPC TraceService endpoint on loopback that keeps what it receives for the lessons.
"""

from __future__ import annotations

from lab_services.tracing.interceptors import ClientTracing, ServerTracing
from lab_services.tracing.provider import tracer_provider
from lab_services.tracing.receiver import OtlpReceiver, ReceivedSpan

__all__ = ["ClientTracing", "OtlpReceiver", "ReceivedSpan", "ServerTracing", "tracer_provider"]
