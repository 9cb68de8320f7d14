"""Logging, bearer-token auth and client stats interceptors on a real server and channel."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from lab_services.resilience.interceptors import (
    BearerToken,
    CallLog,
    ClientLogging,
    ClientStats,
    RequireBearerToken,
    ServerLogging,
)
from lab_services.service import UserServer, user_pb2, user_pb2_grpc
from lab_services.service.servicer import UserServicer
from lab_services.service.store import UserStore

pytestmark = pytest.mark.timeout(60)

TOKEN = "s3cret-token"


@pytest.fixture
def server_log() -> CallLog:
    return CallLog()


@pytest.fixture
def address(server_log) -> Iterator[str]:
    """The user service and health behind RequireBearerToken and ServerLogging, on a free loopback port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        interceptors=[ServerLogging(server_log), RequireBearerToken([TOKEN, "next-token"])],
        options=[("grpc.so_reuseport", 0)],
    )
    user_pb2_grpc.add_UserServiceServicer_to_server(UserServicer(UserStore(), "auth-test"), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def stub_for(address: str, *interceptors) -> user_pb2_grpc.UserServiceStub:
    return user_pb2_grpc.UserServiceStub(grpc.intercept_channel(grpc.insecure_channel(address), *interceptors))


def create(stub, email="ada@example.org"):
    return stub.CreateUser(user_pb2.CreateUserRequest(name="Ada", email=email), timeout=5)


@pytest.mark.parametrize(
    ("interceptors", "details"),
    [
        ((), "missing bearer token"),
        ((BearerToken("wrong"),), "invalid bearer token"),
    ],
)
def test_calls_without_a_valid_token_are_refused(address, interceptors, details):
    with pytest.raises(grpc.RpcError) as info:
        create(stub_for(address, *interceptors))
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED and info.value.details() == details
    with pytest.raises(grpc.RpcError, match=details):  # server streams are refused as well
        list(stub_for(address, *interceptors).ListUsers(user_pb2.ListUsersRequest(), timeout=5))


def test_good_token_passes_and_health_needs_none(address):
    assert create(stub_for(address, BearerToken(TOKEN))).served_by == "auth-test"
    assert create(stub_for(address, BearerToken("next-token")), "bob@example.org").served_by == "auth-test"
    with grpc.insecure_channel(address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(ValueError, match="token"):
        BearerToken("two words")


def test_client_and_server_logging(address, server_log, caplog):
    client_log = CallLog()
    stub = stub_for(address, BearerToken(TOKEN), ClientLogging(client_log))
    with caplog.at_level(logging.INFO, logger="lab_services.resilience.interceptors"):
        create(stub)
        with pytest.raises(grpc.RpcError):
            create(stub)  # the same email again: ALREADY_EXISTS
        assert len(list(stub.ListUsers(user_pb2.ListUsersRequest(), timeout=5))) == 1
    method = "/lab.user.v1.UserService/CreateUser"
    assert [(r.side, r.method, r.code) for r in client_log.records()] == [
        ("client", method, "OK"),
        ("client", method, "ALREADY_EXISTS"),
        ("client", "/lab.user.v1.UserService/ListUsers", "OK"),
    ]
    assert [(r.side, r.code) for r in server_log.records()] == [
        ("server", "OK"),
        ("server", "ALREADY_EXISTS"),
        ("server", "OK"),
    ]
    assert all(0 <= r.seconds < 5 for r in client_log.records())
    assert f"client {method} ALREADY_EXISTS" in caplog.text
    client_log.clear()
    assert client_log.records() == []


def test_client_stats_count_codes_and_percentiles():
    server = UserServer(instance_id="stats-test").start()
    try:
        stats = ClientStats()
        stub = stub_for(server.address, stats)
        created = create(stub)
        for _ in range(19):
            stub.GetUser(user_pb2.GetUserRequest(id=created.id), timeout=5)
        server.faults.set(error_rate=1.0)
        for _ in range(5):
            with pytest.raises(grpc.RpcError):
                stub.GetUser.future(user_pb2.GetUserRequest(id=created.id), timeout=5).result()
    finally:
        server.stop(0)
    snapshot = stats.snapshot()
    get = snapshot["/lab.user.v1.UserService/GetUser"]
    assert get["count"] == 24 and get["codes"] == {"OK": 19, "UNAVAILABLE": 5}
    assert 0 < get["p50_ms"] <= get["p95_ms"] < 5000
    assert snapshot["/lab.user.v1.UserService/CreateUser"]["count"] == 1
    assert len(stats.latencies("/lab.user.v1.UserService/GetUser")) == 24
    stats.reset()
    assert stats.snapshot() == {}
