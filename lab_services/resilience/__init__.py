"""Resilience mechanisms for gRPC calls: retry and hedging configs, deadline propagation, circuit breakers.

    from lab_services.resilience import retry_service_config, channel_options, CircuitBreaker

Client and server interceptors (logging, bearer tokens, call statistics) are in `resilience.interceptors`,
imported on their own: its server half builds on the service's handler plumbing, and a client that only
wants a breaker (discovery's PickerChannel) must not load the server. Lesson 07's experiments on these
mechanisms are in `lessons.resilience`.
"""

from lab_services.core.rpc_errors import LocalRpcError
from lab_services.resilience.breaker import (
    FAILURE_CODES,
    BreakerInterceptor,
    BreakerRegistry,
    CircuitBreaker,
    CircuitOpenError,
    State,
    Transition,
    breakers_for,
)
from lab_services.resilience.deadlines import remaining_deadline
from lab_services.resilience.observe import ObservingClientInterceptor
from lab_services.resilience.retry_policy import channel_options, hedging_service_config, retry_service_config

__all__ = [
    "FAILURE_CODES",
    "BreakerInterceptor",
    "BreakerRegistry",
    "CircuitBreaker",
    "CircuitOpenError",
    "LocalRpcError",
    "ObservingClientInterceptor",
    "State",
    "Transition",
    "breakers_for",
    "channel_options",
    "hedging_service_config",
    "remaining_deadline",
    "retry_service_config",
]
