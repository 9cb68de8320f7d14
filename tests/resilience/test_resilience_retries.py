"""Retry and hedging configs: validation of every field, retries against injected faults, hedging ignored."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest

from lab_services.core.backoff import Backoff
from lab_services.lessons.resilience.backoff_plot import plot_backoff, sample_delays
from lab_services.lessons.resilience.gateway import GatewayServer
from lab_services.lessons.resilience.retries import attempts_experiment, hedging_experiment
from lab_services.resilience import channel_options, hedging_service_config, retry_service_config
from lab_services.service import UserServer

pytestmark = pytest.mark.timeout(60)

FAST = {"initial_backoff": "0.01s", "max_backoff": "0.05s"}


@pytest.fixture
def server() -> Iterator[UserServer]:
    server = UserServer(instance_id="retry-test").start()
    yield server
    server.stop(0)


def test_retry_config_has_all_five_fields():
    config = retry_service_config(
        methods=["GetUser", "CreateUser"],
        max_attempts=4,
        retryable_status_codes=[grpc.StatusCode.UNAVAILABLE, "ABORTED"],
    )
    (method_config,) = config["methodConfig"]
    assert method_config["name"] == [
        {"service": "lab.user.v1.UserService", "method": "GetUser"},
        {"service": "lab.user.v1.UserService", "method": "CreateUser"},
    ]
    assert method_config["retryPolicy"] == {
        "maxAttempts": 4,
        "initialBackoff": "0.1s",
        "maxBackoff": "1s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE", "ABORTED"],
    }
    options = dict(channel_options(config))
    assert json.loads(options["grpc.service_config"]) == config and options["grpc.enable_retries"] == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_attempts", 7, "invalid argument: max_attempts: 7; gRPC allows 2 to 5"),
        ("max_attempts", 1, "invalid argument: max_attempts: 1; gRPC allows 2 to 5"),
        ("max_attempts", True, "invalid argument: max_attempts: True; gRPC allows 2 to 5"),
        ("initial_backoff", "100ms", "invalid argument: initial_backoff: '100ms'; use seconds with an \"s\""),
        (
            "initial_backoff",
            0.1,
            'invalid argument: initial_backoff: 0.1; write seconds as a string with an "s", e.g. "0.1s"',
        ),
        ("initial_backoff", "0s", "invalid argument: initial_backoff: '0s'; must be more than zero"),
        ("max_backoff", "-1s", "invalid argument: max_backoff: '-1s'"),
        ("backoff_multiplier", 0, "invalid argument: backoff_multiplier: 0; use a number > 0"),
        ("backoff_multiplier", float("nan"), "invalid argument: backoff_multiplier: nan"),
        ("retryable_status_codes", (), "invalid argument: retryable_status_codes: []"),
        (
            "retryable_status_codes",
            ["UNAVAILABEL"],
            "invalid argument: retryable_status_codes: ['UNAVAILABEL']; use grpc.StatusCode names",
        ),
        ("retryable_status_codes", ["OK"], "invalid argument: retryable_status_codes: ['OK']"),
        ("service", "", "invalid argument: service: ''"),
        ("methods", [], "invalid argument: methods: []"),
        (
            "methods",
            ["/lab.user.v1.UserService/GetUser"],
            "invalid argument: methods: ['/lab.user.v1.UserService/GetUser']",
        ),
    ],
)
def test_retry_config_refuses_each_bad_field(field, value, message):
    with pytest.raises(ValueError) as info:
        retry_service_config(**{field: value})
    assert str(info.value).startswith(message)


def test_hedging_config_and_its_validation():
    policy = hedging_service_config(max_attempts=3, hedging_delay="0s", non_fatal_status_codes=())["methodConfig"][0][
        "hedgingPolicy"
    ]
    assert policy == {"maxAttempts": 3, "hedgingDelay": "0s", "nonFatalStatusCodes": []}
    with pytest.raises(ValueError, match="hedging_delay: '50ms'"):
        hedging_service_config(hedging_delay="50ms")
    with pytest.raises(ValueError, match="max_attempts: 6; gRPC allows 2 to 5"):
        hedging_service_config(max_attempts=6)


def test_retries_turn_injected_unavailable_into_successes(server):
    """Through the gateway (which fails calls before sending headers) 5 attempts at 50% errors succeed ~97%."""
    server.faults.set(error_rate=0.5)
    retry = channel_options(retry_service_config(max_attempts=5, **FAST))
    with GatewayServer(server.address) as gateway:
        without = attempts_experiment(server, calls=200, address=gateway.address)
        with_retries = attempts_experiment(server, retry, calls=200, address=gateway.address)
    # Without retries every call is one attempt and about half fail; with them, 1 - 0.5**5 = 97% succeed.
    assert without["server_attempts"] == 200
    assert 60 <= without["ok"] <= 140
    assert with_retries["ok"] >= 180
    assert with_retries["ok"] > without["ok"] + 40
    # Each call took 1 to 5 attempts, all counted by the upstream's metrics (expected ~1.9 per call).
    assert 250 <= with_retries["server_attempts"] <= 5 * 200
    assert set(with_retries["codes"]) <= {"OK", "UNAVAILABLE"}


def test_retries_reach_the_user_service_itself(server):
    """x-served-by waits for the first response, so an injected fault leaves the call retryable (gRFC A6)."""
    server.faults.set(error_rate=1.0)
    result = attempts_experiment(server, channel_options(retry_service_config(max_attempts=5, **FAST)), calls=20)
    assert result["ok"] == 0
    assert result["server_attempts"] == 100  # every call tried five times before giving up


def test_hedging_is_accepted_but_python_sends_one_attempt(server):
    result = hedging_experiment(server, latency_ms=300, max_attempts=3, hedging_delay="0.05s")
    assert result == {"hedging_would_send": 3, "server_attempts": 1, "ok": 1}


def test_backoff_samples_stay_under_the_ceiling():
    rows = sample_delays(base=0.1, cap=1.0, attempts=8, runs=50, seed=1)
    ceiling = Backoff(base=0.1, cap=1.0)
    assert len(rows) == 50 and all(len(row) == 8 for row in rows)
    assert all(0 <= row[n] <= ceiling.ceiling(n) for row in rows for n in range(8))
    figure = plot_backoff(base=0.1, cap=1.0, attempts=8, runs=50)
    (axes,) = figure.axes
    assert len(axes.lines) == 2 and len(axes.collections) == 8
