"""Resilience for gRPC calls: retry and hedging configs, backoff plots, deadline propagation, circuit breakers, interceptors.

    from lab_services.resilience import retry_service_config, channel_options, CircuitBreaker, GatewayServer
"""
from lab_services.resilience.backoff_plot import plot_backoff, sample_delays
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
from lab_services.resilience.deadlines import GatewayServer, deadline_experiment, remaining_deadline
from lab_services.rpc_errors import LocalRpcError
from lab_services.resilience.interceptors import (
    BearerToken,
    CallLog,
    CallRecord,
    ClientLogging,
    ClientStats,
    RequireBearerToken,
    ServerLogging,
)
from lab_services.resilience.measure import create_user_call, run_calls, server_attempts, server_codes, wait_idle
from lab_services.resilience.observe import ObservingClientInterceptor
from lab_services.resilience.retry_policy import (
    attempts_experiment,
    channel_options,
    hedging_experiment,
    hedging_service_config,
    retry_service_config,
)

__all__ = [
    "FAILURE_CODES",
    "BearerToken",
    "BreakerInterceptor",
    "BreakerRegistry",
    "CallLog",
    "CallRecord",
    "CircuitBreaker",
    "CircuitOpenError",
    "ClientLogging",
    "ClientStats",
    "GatewayServer",
    "LocalRpcError",
    "ObservingClientInterceptor",
    "RequireBearerToken",
    "ServerLogging",
    "State",
    "Transition",
    "attempts_experiment",
    "breakers_for",
    "channel_options",
    "create_user_call",
    "deadline_experiment",
    "hedging_experiment",
    "hedging_service_config",
    "plot_backoff",
    "remaining_deadline",
    "retry_service_config",
    "run_calls",
    "sample_delays",
    "server_attempts",
    "server_codes",
    "wait_idle",
]
