"""The articles' Go programs in one lab with the Python ones, on real Consul and etcd: each finds and calls the
other."""

from __future__ import annotations

import re
import time
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from labs import EtcdNode, local_lab

from lab_services.core.wait import wait_for
from lab_services.discovery import ConsulWatcher, EtcdWatcher, PickerChannel
from lab_services.lessons.drills.probe import Load
from lab_services.lessons.go_fleet import GoInstance, calls_by_instance, run_go_client
from lab_services.service import user_pb2, user_pb2_grpc

PYTHON = {"user-1", "user-2", "user-3"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One Consul server, one etcd member and three Python instances registered in both."""
    with local_lab(tmp_path_factory.mktemp("go-fleet"), consul_servers=1, etcd_members=1, services=3) as cluster:
        yield cluster


def etcd_watcher(lab) -> EtcdWatcher:
    return EtcdWatcher("user", lab.status().etcd.endpoints).start()


def test_the_go_service_registered_the_articles_way_is_found_by_the_etcd_watcher_and_called(lab):
    go = GoInstance(lab, registry="etcd").start()
    kv = None
    try:
        with etcd_watcher(lab) as watcher:
            assert watcher.wait_for(lambda xs: {i.id for i in xs} == PYTHON | {go.instance_id}, 15), (
                watcher.instances(),
                watcher.unreadable,
            )
            assert not watcher.unreadable
            served = calls_by_instance(watcher, calls=16)
        assert set(served) == PYTHON | {go.id}, served
        # The key is the articles': the address as the last segment, an empty value, a 10 s lease.
        kv = EtcdNode(lab, "etcd-1").client()
        value, meta = kv.get(go.key)
        assert value == b"" and meta.lease_id
        assert kv.get_lease_info(meta.lease_id).grantedTTL == 10
    finally:
        if kv is not None:
            kv.close()
        go.stop()
    with etcd_watcher(lab) as watcher:
        assert watcher.wait_for(lambda xs: {i.id for i in xs} == PYTHON, 10), "SIGTERM revokes the lease at once"


def test_the_go_service_in_consul_passes_its_grpc_check_and_is_routed_to(lab):
    go = GoInstance(lab, registry="consul").start()
    consul = lab.status().consul.http
    try:
        with ConsulWatcher("user", consul, wait="5s") as watcher:
            assert watcher.wait_for(lambda xs: go.id in {i.id for i in xs}, 15), "it passes its gRPC check"
        # A route to the Go canary alone: Consul filters on the tag the Go service registered with.
        with ConsulWatcher("user", consul, wait="5s", filter_expr='"canary" in Service.Tags') as canary:
            assert canary.wait_for(lambda xs: [i.id for i in xs] == [go.id], 15), canary.instances()
            assert calls_by_instance(canary, calls=5) == {go.id: 5}
    finally:
        go.stop()


@pytest.mark.parametrize("registry", ["etcd", "consul"])
def test_a_killed_go_service_leaves_the_passing_set_and_no_caller_fails(lab, registry):
    go = GoInstance(lab, registry=registry).start()
    status = lab.status()
    watcher = etcd_watcher(lab) if registry == "etcd" else ConsulWatcher("user", status.consul.http, wait="5s").start()
    try:
        assert watcher.wait_for(lambda xs: go.instance_id in {i.id for i in xs}, 15)
        with PickerChannel(watcher, "round_robin") as channel:
            load = Load(channel, call_timeout=5, rate=20).start()
            try:
                began = time.monotonic()
                wait_for(lambda: go.id in {who for *_, who in load.results}, 10, "a call served by the Go service")
                go.kill()
                # Its lease (10 s) or its gRPC check (every 1 s) takes it out; the picker ejects it meanwhile.
                window = go.lease + 5 if registry == "etcd" else 15
                assert watcher.wait_for(lambda xs: go.instance_id not in {i.id for i in xs}, window), registry
                left = time.monotonic()
                wait_for(lambda: load.calls(left) >= 10, 10, "calls after it left")
            finally:
                load.stop()
        assert load.errors(began) == {}, load.errors(began)
        assert {who for *_, who in load.results if who} >= PYTHON
    finally:
        watcher.stop()


def test_the_go_clients_etcd_resolver_finds_and_calls_every_python_instance(lab):
    run = run_go_client(lab, calls=12, expect=3)
    assert run.exit_code == 0 and run.failed == 0, (run.calls, run.stderr)
    assert len(run.resolved[-1]) == 3, run.resolved
    assert set(run.served_by) == PYTHON, run.served_by


def answers(address: str, tag: str) -> dict[str, object]:
    """The same calls to one instance: each call mode, the errors lesson 01 shows, the health check, x-served-by."""
    channel = grpc.insecure_channel(address)
    stub = user_pb2_grpc.UserServiceStub(channel)

    def failure(call) -> str:
        try:
            call()
        except grpc.RpcError as err:
            # User ids count per instance, so only their shape is compared.
            return re.sub(r"u-\d+", "u-N", f"{err.code().name}: {err.details()}")
        return "OK"

    try:
        created, call = stub.CreateUser.with_call(
            user_pb2.CreateUserRequest(name="Ada", email=f"ada-{tag}@example.com")
        )
        imported = stub.ImportUsers(
            iter([user_pb2.CreateUserRequest(name="B", email=f"b-{tag}@example.com"), user_pb2.CreateUserRequest()])
        )
        chat = stub.Chat(iter([user_pb2.ChatMessage(sender="me", text="hi"), user_pb2.ChatMessage(text="again")]))
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="lab.user.v1.UserService")
        )
        return {
            "served_by header": dict(call.initial_metadata())["x-served-by"] == created.served_by,
            "listed": [u.name for u in stub.ListUsers(user_pb2.ListUsersRequest())],
            "imported": (imported.imported, [(r.index, r.reason) for r in imported.rejected]),
            "chat": [m.text for m in chat],
            "got": stub.GetUser(user_pb2.GetUserRequest(id=created.id)).email == created.email,
            "missing": failure(lambda: stub.GetUser(user_pb2.GetUserRequest(id="u-999"))),
            "bad email": failure(lambda: stub.CreateUser(user_pb2.CreateUserRequest(name="A", email="nope"))),
            "duplicate": failure(
                lambda: stub.CreateUser(user_pb2.CreateUserRequest(name="A", email=f"ada-{tag}@example.com"))
            ),
            "health": health_pb2.HealthCheckResponse.ServingStatus.Name(health.status),
        }
    finally:
        channel.close()


def test_the_go_service_answers_every_call_as_the_python_one_does(lab):
    go = GoInstance(lab, registry="etcd").start()
    try:
        tag = uuid.uuid4().hex[:8]
        python, ported = answers(lab.status().service("user-1").address, tag), answers(go.address, tag)
    finally:
        go.stop()
    # Each instance has its own users: compare what a fresh user's calls return, names and messages included.
    python["listed"], ported["listed"] = python["listed"][-1:], ported["listed"][-1:]
    assert ported == python
