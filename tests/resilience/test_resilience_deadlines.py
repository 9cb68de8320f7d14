"""Deadline propagation through a gateway: with it the upstream's call ends with the caller's; without, it runs on."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from lab_services.lessons.resilience.gateway import GatewayServer, deadline_experiment
from lab_services.resilience import remaining_deadline
from lab_services.service import UserServer, user_pb2, user_pb2_grpc

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def upstream() -> Iterator[UserServer]:
    server = UserServer(instance_id="upstream").start()
    yield server
    server.stop(0)


def test_with_propagation_the_upstream_call_ends_with_the_callers(upstream):
    result = deadline_experiment(upstream, propagate=True, calls=3, timeout=0.2, latency_ms=600)
    assert result["client_codes"] == {"DEADLINE_EXCEEDED": 3}
    assert result["upstream_codes"] == {"CANCELLED": 3} and result["upstream_completed"] == 0
    assert all(
        0 < t <= 0.25 for t in result["forwarded_timeouts"]
    )  # what the caller had left, give or take clock reading


def test_without_propagation_the_upstream_works_for_nobody(upstream):
    result = deadline_experiment(upstream, propagate=False, calls=3, timeout=0.2, latency_ms=600)
    assert result["client_codes"] == {"DEADLINE_EXCEEDED": 3}
    assert result["upstream_codes"] == {"OK": 3} and result["upstream_completed"] == 3
    assert result["forwarded_timeouts"] == [30.0] * 3
    assert upstream.faults.current.latency_ms == 0  # the experiment restores the faults


def test_gateway_forwards_answers_and_errors(upstream):
    with GatewayServer(upstream.address) as gateway, grpc.insecure_channel(gateway.address) as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        created = stub.CreateUser(user_pb2.CreateUserRequest(name="Ada", email="ada@example.org"), timeout=5)
        assert stub.GetUser(user_pb2.GetUserRequest(id=created.id)).served_by == "upstream"
        with pytest.raises(grpc.RpcError) as info:
            stub.GetUser(user_pb2.GetUserRequest(id="nobody"), timeout=5)
        assert info.value.code() is grpc.StatusCode.NOT_FOUND and "nobody" in info.value.details()
        with pytest.raises(grpc.RpcError) as info:
            stub.DeleteUser(user_pb2.DeleteUserRequest(id=created.id), timeout=5)
        assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
        # No deadline from the caller: none upstream either; a 5 s deadline: what is left of it upstream.
        (_, first), (_, second) = gateway.forwarded[1:3]
        assert first is None and 0 < second <= 5.1  # the server reads the deadline off its own clock


def test_remaining_deadline_reads_none_without_a_deadline():
    class Context:
        def __init__(self, remaining):
            self.remaining = remaining

        def time_remaining(self):
            return self.remaining

    assert remaining_deadline(Context(9.2e9)) is None
    assert remaining_deadline(Context(1.5)) == 1.5
