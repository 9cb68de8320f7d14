"""The service's own Prometheus metrics, recorded by a server interceptor on every gRPC call.

Names and labels follow go-grpc-prometheus (grpc_server_handled_total{grpc_service, grpc_method,
grpc_code}), so PromQL from other gRPC tutorials works unchanged in the Prometheus lesson. Each
server gets its own CollectorRegistry, so several in-process servers do not share counters.
"""

from __future__ import annotations

import time

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lab_services.service.interceptors import Behavior, final_code, split_method, wrap_handler


class ServiceMetrics:
    """Request counter by method and code, latency histogram by method, and calls in flight."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        labels = ("grpc_service", "grpc_method")
        self.handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by status code.",
            (*labels, "grpc_code"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "grpc_server_handling_seconds",
            "Time from call start to its last response, in seconds.",
            labels,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "grpc_server_in_flight",
            "RPCs started and not yet finished.",
            labels,
            registry=self.registry,
        )

    def begin(self, labels: tuple[str, str]) -> float:
        """Count a call in flight; returns its start time for end()."""
        self.in_flight.labels(*labels).inc()
        return time.perf_counter()

    def end(self, labels: tuple[str, str], started: float, code: grpc.StatusCode) -> None:
        self.in_flight.labels(*labels).dec()
        self.latency.labels(*labels).observe(time.perf_counter() - started)
        self.handled.labels(*labels, code.name).inc()


class MetricsInterceptor(grpc.ServerInterceptor):
    """Records ServiceMetrics for every call; put it first so it also times the other interceptors."""

    def __init__(self, metrics: ServiceMetrics):
        self._metrics = metrics

    def intercept_service(self, continuation, handler_call_details):
        labels = split_method(handler_call_details.method)
        metrics = self._metrics

        def finish(context: grpc.ServicerContext, started: float, failed: BaseException | None) -> None:
            metrics.end(labels, started, final_code(context, failed))

        def wrap(behavior: Behavior, streaming: bool) -> Behavior:
            def measured_unary(request, context):
                started = metrics.begin(labels)
                try:
                    response = behavior(request, context)
                except BaseException as exc:
                    finish(context, started, exc)
                    raise
                finish(context, started, None)
                return response

            def measured_stream(request, context):
                started = metrics.begin(labels)
                try:
                    yield from behavior(request, context)
                except BaseException as exc:
                    finish(context, started, exc)
                    raise
                finish(context, started, None)

            return measured_stream if streaming else measured_unary

        return wrap_handler(continuation(handler_call_details), wrap)
