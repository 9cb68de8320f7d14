"""What lessons 07 and 09 claim about Consul and gRPC, checked on the real servers (issue 9's factual fixes)."""

from __future__ import annotations

import pytest
from labs import ConsulNode

from lab_services.lessons.interval_floor import interval_floor
from lab_services.lessons.resilience.gateway import deadline_experiment
from lab_services.lessons.resilience.service_config import service_config_mistakes
from lab_services.service import UserServer


def test_consul_accepts_an_interval_below_one_second_runs_it_every_second_and_logs_a_warning(consul_node: ConsulNode):
    floor = interval_floor(consul_node.lab, interval="200ms", seconds=3.5)
    # At 200 ms it would run ~17 times; at Consul's 1 s floor 3 or 4 times.
    assert 2 <= floor["runs"] <= 5, floor
    assert 0.8 <= floor["effective_interval"] <= 1.3, floor
    assert "check has interval below minimum" in floor["agent_log"] and "minimum_interval=1s" in floor["agent_log"], (
        floor
    )
    assert "Consul accepts it, runs the check every 1s" in floor["lab_warning"], floor


def test_interval_floor_refuses_an_interval_that_is_not_below_the_floor(consul_node: ConsulNode):
    with pytest.raises(ValueError, match="interval: '1s' is not below Consul's 1s minimum"):
        interval_floor(consul_node.lab, interval="1s")


@pytest.fixture(scope="module")
def server():
    server = UserServer(name="claims").start()
    yield server
    server.stop(0)


def test_grpc_service_config_mistakes_fail_loudly_clamp_or_are_silently_ignored(server):
    rows = {r["mistake"]: r for r in service_config_mistakes(server)}
    broken = rows["does not parse (JSON cut short)"]
    assert broken["client_codes"] == {"INVALID_ARGUMENT": 1} and broken["server_attempts"] == 0, broken
    assert rows["maxAttempts 9"]["server_attempts"] == 5, rows["maxAttempts 9"]
    assert rows["method 'CreateUsr' (a typo)"]["server_attempts"] == 1, rows
    assert rows["method 'CreateUsr' (a typo)"]["client_codes"] == {"UNAVAILABLE": 1}, rows
    assert rows["correct, maxAttempts 5"]["server_attempts"] == 5, rows
    assert server.faults.current.error_rate == 0, "the experiment must put the faults back"


@pytest.mark.parametrize("server_kind", ["aio", "threads"])
def test_with_deadline_propagation_the_upstream_skips_the_work_without_it_does_it(server_kind):
    """Both servicers (asyncio and thread pool) check that their caller is still there before writing."""
    server = UserServer(name=f"claims-{server_kind}", server_kind=server_kind).start()
    try:
        with_propagation = deadline_experiment(server, propagate=True, calls=3, latency_ms=400)
        without = deadline_experiment(server, propagate=False, calls=3, latency_ms=400)
    finally:
        server.stop(0)
    assert with_propagation["client_codes"] == without["client_codes"] == {"DEADLINE_EXCEEDED": 3}
    assert with_propagation["users_written"] == 0, with_propagation
    assert without["users_written"] == 3, without
