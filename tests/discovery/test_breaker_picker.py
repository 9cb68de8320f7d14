"""Breakers in the picker: an instance failing calls is skipped once its breaker opens, and tried after a cool-down."""

from __future__ import annotations

import collections
import itertools
import time

import grpc
import pytest

from lab_services.discovery import ConsulWatcher, PickerChannel
from lab_services.resilience import BreakerRegistry, CircuitOpenError
from lab_services.service import AdminClient, user_pb2, user_pb2_grpc

pytestmark = pytest.mark.timeout(120)

IDS = ["user-1", "user-2", "user-3"]
_numbers = itertools.count()


@pytest.fixture(scope="module")
def watcher(three_in_consul):
    w = ConsulWatcher("user", three_in_consul.status().consul.http, wait="5s").start()
    assert w.wait_for(lambda xs: [i.id for i in xs] == IDS, 15)
    yield w
    w.stop()


@pytest.fixture()
def admins(three_in_consul):
    clients = {s.id: AdminClient(s.admin) for s in three_in_consul.status().services}
    yield clients
    for client in clients.values():
        client.set_faults(latency_ms=0, error_rate=0)


def calls(channel, n: int) -> collections.Counter:
    """Outcomes of n CreateUser calls: the serving instance for a success, else the status code's name."""
    stub = user_pb2_grpc.UserServiceStub(channel)
    seen = collections.Counter()
    for _ in range(n):
        k = next(_numbers)
        try:
            seen[
                stub.CreateUser(
                    user_pb2.CreateUserRequest(name=f"u{k}", email=f"bp{k}@example.org"), timeout=2
                ).served_by
            ] += 1
        except grpc.RpcError as err:
            seen["open" if isinstance(err, CircuitOpenError) else err.code().name] += 1
    return seen


def test_open_breaker_skips_the_failing_instance_then_half_opens(watcher, admins):
    breakers = BreakerRegistry(failure_threshold=3, window=5, open_for=1.0)
    admins["user-2"].set_faults(error_rate=1.0)
    with PickerChannel(watcher, retries=0, eject_for=0, breakers=breakers) as channel:
        seen = calls(channel, 60)
        # Round robin sends every third call to user-2 until three of them failed; then it is skipped.
        assert seen["UNAVAILABLE"] == 3, seen
        assert seen["user-1"] + seen["user-3"] == 57 and "user-2" not in seen
        assert breakers.snapshot()["user-2"]["state"] == "OPEN"
        assert channel.stats()["user-2"]["failures"] == 3

        admins["user-2"].set_faults(error_rate=0)
        time.sleep(1.1)
        assert breakers.snapshot()["user-2"]["state"] == "HALF_OPEN"
        seen = calls(channel, 9)
        assert seen["user-2"] >= 1 and seen["UNAVAILABLE"] == 0, seen
        assert breakers.snapshot()["user-2"]["state"] == "CLOSED"
        states = [(t.old.value, t.new.value) for t in breakers.breaker("user-2").transitions]
        assert states == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


def test_a_failed_trial_opens_the_breaker_again(watcher, admins):
    breakers = BreakerRegistry(failure_threshold=2, window=4, open_for=0.5)
    admins["user-3"].set_faults(error_rate=1.0)
    with PickerChannel(watcher, retries=0, eject_for=0, breakers=breakers) as channel:
        calls(channel, 12)
        time.sleep(0.6)
        seen = calls(channel, 6)
    assert seen["UNAVAILABLE"] == 1, seen  # the one trial call, and it failed
    assert breakers.snapshot()["user-3"]["state"] == "OPEN"


def test_retries_go_around_an_open_breaker(watcher, admins):
    breakers = BreakerRegistry(failure_threshold=2, window=4, open_for=5.0)
    admins["user-1"].set_faults(error_rate=1.0)
    with PickerChannel(watcher, retries=2, eject_for=0, breakers=breakers) as channel:
        seen = calls(channel, 30)
    assert set(seen) <= {"user-2", "user-3"} and sum(seen.values()) == 30, seen
    assert breakers.breaker("user-1").failures() == 2


def test_every_breaker_open_fails_fast(watcher, admins):
    breakers = BreakerRegistry(failure_threshold=1, window=1, open_for=5.0)
    for client in admins.values():
        client.set_faults(error_rate=1.0)
    with PickerChannel(watcher, retries=0, eject_for=0, breakers=breakers) as channel:
        calls(channel, 3)
        started = time.monotonic()
        with pytest.raises(CircuitOpenError) as raised:
            user_pb2_grpc.UserServiceStub(channel).CreateUser(
                user_pb2.CreateUserRequest(name="x", email="x@example.org"), timeout=2
            )
    assert time.monotonic() - started < 0.05
    assert (
        raised.value.code() == grpc.StatusCode.UNAVAILABLE
        and "circuit open for every instance of 'user'" in raised.value.details()
    )
