"""Circuit breaker states on an injected clock, the registry a picker uses, and the fail-fast interceptor."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest

from lab_services.lessons.resilience.measure import server_attempts
from lab_services.resilience import (
    BreakerInterceptor,
    BreakerRegistry,
    CircuitBreaker,
    CircuitOpenError,
    State,
    breakers_for,
)
from lab_services.service import UserServer, user_pb2, user_pb2_grpc

pytestmark = pytest.mark.timeout(60)


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_opens_after_threshold_rejects_then_half_opens_and_closes(clock):
    breaker = CircuitBreaker(failure_threshold=3, window=5, open_for=5.0, clock=clock, name="user-1")
    seen = []
    breaker.subscribe(seen.append)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    breaker.record_success()
    assert breaker.state is State.CLOSED  # 2 of the last 3 failed: below the threshold
    breaker.record_failure()
    assert breaker.state is State.OPEN  # 3 of the last 4
    assert [breaker.allow() for _ in range(4)] == [False] * 4
    assert breaker.rejected == 4 and breaker.retry_after() == 5.0
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state is State.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # one trial call only
    breaker.record_success()
    assert breaker.state is State.CLOSED and breaker.failures() == 0
    assert [(t.old, t.new) for t in breaker.transitions] == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]
    assert [t.at for t in breaker.transitions] == [100.0, 105.0, 105.0]
    assert seen == breaker.transitions and seen[0].name == "user-1"


def test_failed_trial_reopens_for_another_cool_down(clock):
    breaker = CircuitBreaker(failure_threshold=2, window=2, open_for=1.0, half_open_max_calls=2, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.now += 1.0
    assert breaker.allow() and breaker.allow() and not breaker.allow()
    breaker.record_success()
    assert breaker.state is State.HALF_OPEN  # needs both trials to succeed
    breaker.record_failure()
    assert breaker.state is State.OPEN and breaker.retry_after() == 1.0
    assert [t.new for t in breaker.transitions] == [State.OPEN, State.HALF_OPEN, State.OPEN]


def test_status_codes_decide_what_counts_as_a_failure(clock):
    breaker = CircuitBreaker(failure_threshold=2, window=2, clock=clock)
    for code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OK):
        breaker.record(code)
    assert breaker.state is State.CLOSED
    breaker.record(grpc.StatusCode.UNAVAILABLE)
    breaker.record(grpc.StatusCode.DEADLINE_EXCEEDED)
    assert breaker.state is State.OPEN


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_threshold": 0}, "invalid argument: failure_threshold: 0; use a whole number >= 1"),
        ({"failure_threshold": 6, "window": 5}, "invalid argument: failure_threshold: 6; it can be at most window (5)"),
        ({"open_for": -1}, "invalid argument: open_for: -1; use seconds >= 0"),
        ({"half_open_max_calls": 1.5}, "invalid argument: half_open_max_calls: 1.5"),
    ],
)
def test_settings_are_checked(kwargs, message):
    with pytest.raises(ValueError) as info:
        CircuitBreaker(**kwargs)
    assert str(info.value).startswith(message)


def test_thread_safe_under_concurrent_failures(clock):
    breaker = CircuitBreaker(failure_threshold=50, window=100, clock=clock)
    threads = [threading.Thread(target=lambda: [breaker.record_failure() for _ in range(100)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert breaker.state is State.OPEN and len(breaker.transitions) == 1


def test_registry_keeps_one_breaker_per_instance(clock):
    class Instance:
        def __init__(self, id):
            self.id = id

    registry = breakers_for([Instance("a"), "b"], failure_threshold=1, window=1, open_for=2.0, clock=clock)
    seen = []
    registry.subscribe(seen.append)
    registry.record("a", grpc.StatusCode.UNAVAILABLE)
    assert registry.open_ids() == {"a"}
    assert not registry.allow("a") and registry.allow("b")
    registry.record("c", grpc.StatusCode.UNAVAILABLE)  # a breaker is made on first use, subscribers included
    assert registry.open_ids() == {"a", "c"} and [t.name for t in seen] == ["a", "c"]
    assert registry.snapshot()["a"] == {"state": "OPEN", "failures": 1, "rejected": 1, "retry_after": 2.0}
    clock.now += 2
    assert registry.open_ids() == set()  # cooled down: HALF_OPEN, eligible for a trial call
    registry.retain(["b"])
    assert list(registry.snapshot()) == ["b"]
    with pytest.raises(ValueError, match="window"):
        BreakerRegistry(window=0)


@pytest.fixture
def server() -> Iterator[UserServer]:
    server = UserServer(instance_id="breaker-test").start()
    yield server
    server.stop(0)


def test_interceptor_fails_fast_while_open_and_recovers(server, clock):
    breaker = CircuitBreaker(failure_threshold=3, window=3, open_for=5.0, clock=clock)
    channel = grpc.intercept_channel(grpc.insecure_channel(server.address), BreakerInterceptor(breaker, server.address))
    stub = user_pb2_grpc.UserServiceStub(channel)
    request = user_pb2.CreateUserRequest(name="Ada", email="ada@example.org")
    server.faults.set(error_rate=1.0)
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as info:
            stub.CreateUser(request, timeout=5)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE and "injected fault" in info.value.details()
    assert breaker.state is State.OPEN
    sent = server_attempts(server)

    with pytest.raises(grpc.RpcError) as info:
        stub.CreateUser(request, timeout=5)
    assert isinstance(info.value, CircuitOpenError)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert info.value.details() == f"circuit open for {server.address}; retry after 5.0 s"
    with pytest.raises(grpc.RpcError, match="circuit open"):
        stub.CreateUser.future(request, timeout=5).result()
    with pytest.raises(grpc.RpcError, match="circuit open"):
        list(stub.ListUsers(user_pb2.ListUsersRequest(), timeout=5))
    assert server_attempts(server) == sent  # nothing reached the server

    server.faults.set(error_rate=0)
    clock.now += 5
    assert stub.CreateUser(request, timeout=5).served_by == "breaker-test"  # the trial call
    assert breaker.state is State.CLOSED
    assert len(list(stub.ListUsers(user_pb2.ListUsersRequest(), timeout=5))) == 1  # streams are guarded too
