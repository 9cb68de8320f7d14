"""Discovery-aware channels on a real cluster: spreading, policies, streams, and no failed call across a kill -9."""

from __future__ import annotations

import collections
import contextlib
import itertools
import threading
import time

import grpc
import pytest
from labs import local_lab

from lab_services.core.instance import ServiceInstance
from lab_services.core.wait import wait_until
from lab_services.discovery import (
    CanarySplit,
    ConsulWatcher,
    EtcdWatcher,
    NativeChannel,
    NoInstanceError,
    PickerChannel,
)
from lab_services.registry import CheckSpec, ConsulRegistrar, ServiceRegistration
from lab_services.service import AdminClient, UserServer, user_pb2, user_pb2_grpc

IDS = ["user-1", "user-2", "user-3"]
_numbers = itertools.count()


def new_user() -> user_pb2.CreateUserRequest:
    n = next(_numbers)
    return user_pb2.CreateUserRequest(name=f"user {n}", email=f"user{n}@example.com")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_lab(tmp_path_factory.mktemp("chan"), consul_servers=1, etcd_members=1, services=3) as lab:
        yield lab


@pytest.fixture(scope="module")
def consul_http(cluster):
    return cluster.status().consul.http


@pytest.fixture(scope="module")
def consul_watcher(consul_http):
    w = ConsulWatcher("user", consul_http, wait="5s").start()
    assert w.wait_for(lambda xs: [i.id for i in xs] == IDS, 15)
    yield w
    w.stop()


@pytest.fixture(scope="module")
def etcd_watcher(cluster):
    w = EtcdWatcher("user", cluster.status().etcd.endpoints).start()
    assert w.wait_for(lambda xs: [i.id for i in xs] == IDS, 15)
    yield w
    w.stop()


def served_by(channel, n: int) -> collections.Counter:
    stub = user_pb2_grpc.UserServiceStub(channel)
    return collections.Counter(stub.CreateUser(new_user(), timeout=5).served_by for i in range(n))


def admin(cluster, instance_id: str) -> AdminClient:
    return AdminClient(next(s.admin for s in cluster.status().services if s.id == instance_id))


@pytest.mark.parametrize("mode", ["picker", "native"])
@pytest.mark.parametrize("registry", ["consul", "etcd"])
def test_300_calls_spread_over_three_instances(request, mode, registry):
    watcher = request.getfixturevalue(f"{registry}_watcher")
    make = PickerChannel if mode == "picker" else NativeChannel
    with make(watcher) as channel:
        # gRPC's own round_robin picks among the subchannels connected so far: under load the third may connect a
        # few calls late. Warm up until each instance has served once, then count the steady state.
        wait_until(lambda: len(served_by(channel, 6)) == len(IDS), 10, "every instance to serve a call")
        before = {i: s["calls"] for i, s in channel.stats().items()}
        counts = served_by(channel, 300)
        after = {i: s["calls"] - before.get(i, 0) for i, s in channel.stats().items()}
        assert after == counts
    print(mode, registry, dict(counts))
    assert sorted(counts) == IDS and all(c > 60 for c in counts.values()), counts


def test_round_robin_rotates_in_id_order(consul_watcher):
    with PickerChannel(consul_watcher, "round_robin") as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        order = [stub.CreateUser(new_user()).served_by for _ in range(9)]
        stats = channel.stats()
    assert order[:3] == sorted(order[:3]) and order == order[:3] * 3, order
    assert {i: s["calls"] for i, s in stats.items()} == {i: 3 for i in IDS}
    assert all(s["failures"] == 0 and s["in_flight"] == 0 and not s["ejected"] for s in stats.values())


@pytest.mark.parametrize("policy", ["random", "p2c", "least_outstanding", "weighted"])
def test_every_policy_reaches_every_instance(consul_watcher, policy):
    with PickerChannel(consul_watcher, policy) as channel:
        counts = served_by(channel, 300)
    print(policy, dict(counts))
    assert sorted(counts) == IDS and all(c > 45 for c in counts.values()), counts


@pytest.mark.parametrize("policy", ["least_outstanding", "p2c"])
def test_load_aware_policies_avoid_a_slow_instance(cluster, consul_watcher, policy):
    slow = admin(cluster, "user-1")
    slow.set_faults(latency_ms=200)
    try:
        with PickerChannel(consul_watcher, policy) as channel:
            stub = user_pb2_grpc.UserServiceStub(channel)
            counts: collections.Counter = collections.Counter()
            lock = threading.Lock()
            stop_at = time.monotonic() + 2.0

            def loop():
                while time.monotonic() < stop_at:
                    who = stub.CreateUser(new_user(), timeout=5).served_by
                    with lock:
                        counts[who] += 1

            threads = [threading.Thread(target=loop) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        slow.set_faults(latency_ms=0)
    share = counts["user-1"] / sum(counts.values())
    print(policy, dict(counts), f"slow share {share:.3f}")
    # Round robin would send the slow instance a third; these send it a few percent.
    assert share < 0.10, counts


@contextlib.contextmanager
def registered_servers(consul_http: list[str], name: str, specs: list[tuple[str, tuple, dict]]):
    """In-process UserServers named `name`, registered in Consul with (instance id, tags, meta) each; stopped after."""
    servers, registrars = [], []
    try:
        for instance_id, tags, meta in specs:
            server = UserServer(name=name, instance_id=instance_id).start()
            servers.append(server)
            host, port = server.address.rsplit(":", 1)
            reg = ServiceRegistration(
                ServiceInstance(id=instance_id, name=name, host=host, port=int(port), tags=tags, meta=meta),
                checks=(CheckSpec("grpc"),),
            )
            registrars.append(ConsulRegistrar(reg, consul_http=consul_http[0]).start())
        yield servers
    finally:
        for r in registrars:
            r.stop()
        for server in servers:
            server.stop(grace=0)


def test_weighted_follows_meta_weight(consul_http):
    specs = [("weighted-3", (), {"weight": "3"}), ("weighted-1", (), {"weight": "1"})]
    with (
        registered_servers(consul_http, "weighted", specs),
        ConsulWatcher("weighted", consul_http, wait="5s") as watcher,
    ):
        assert watcher.wait_for(lambda xs: len(xs) == 2, 15), watcher.instances()
        with PickerChannel(watcher, "weighted") as channel:
            counts = served_by(channel, 400)
    share = counts["weighted-3"] / 400
    print("weighted", dict(counts))
    assert 0.65 <= share <= 0.85, counts


def test_tag_meta_filters_and_canary_split(consul_http):
    specs = [
        ("shop-a", ("stable",), {"version": "v1"}),
        ("shop-b", ("stable",), {"version": "v1"}),
        ("shop-c", ("canary",), {"version": "v2"}),
    ]
    with (
        registered_servers(consul_http, "shop", specs),
        ConsulWatcher("shop", consul_http, wait="5s") as everyone,
        ConsulWatcher("shop", consul_http, tag="canary", wait="5s") as tagged,
        ConsulWatcher("shop", consul_http, meta={"version": "v1"}, wait="5s") as v1,
    ):
        assert everyone.wait_for(lambda xs: len(xs) == 3, 15), everyone.instances()
        assert tagged.wait_for(lambda xs: [i.id for i in xs] == ["shop-c"], 5), tagged.instances()
        assert v1.wait_for(lambda xs: [i.id for i in xs] == ["shop-a", "shop-b"], 5), v1.instances()
        with PickerChannel(everyone, CanarySplit(canary_share=0.2)) as channel:
            counts = served_by(channel, 500)
    share = counts["shop-c"] / 500
    print("canary 0.2", dict(counts), f"canary share {share:.3f}")
    assert 0.13 <= share <= 0.27 and abs(counts["shop-a"] - counts["shop-b"]) <= 1, counts


def test_streams_and_futures_go_through_the_picker(consul_watcher):
    with PickerChannel(consul_watcher) as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        future = stub.CreateUser.future(new_user(), timeout=5)
        assert future.result(timeout=5).served_by in IDS
        listed = list(stub.ListUsers(user_pb2.ListUsersRequest(limit=2), timeout=5))
        assert all(u.served_by in IDS for u in listed)
        summary = stub.ImportUsers(iter([new_user()]), timeout=5)
        assert summary.served_by in IDS
        replies = list(stub.Chat(iter([user_pb2.ChatMessage(sender="me", text="hi")]), timeout=5))
        assert all(r.served_by in IDS for r in replies)
        response, call = stub.CreateUser.with_call(new_user(), timeout=5)
        assert dict(call.initial_metadata())["x-served-by"] == response.served_by
        time.sleep(0.2)
        assert all(s["in_flight"] == 0 for s in channel.stats().values()), channel.stats()


def test_no_instance_error_names_service_and_registry(consul_http, cluster):
    with ConsulWatcher("nobody", consul_http, wait="5s") as consul_w, PickerChannel(consul_w) as channel:
        assert consul_w.wait_ready(5)
        with pytest.raises(grpc.RpcError) as info:
            user_pb2_grpc.UserServiceStub(channel).CreateUser(new_user())
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert info.value.details() == f"no passing instance of 'nobody' in consul at {consul_http[0]}"
    with EtcdWatcher("nobody", cluster.status().etcd.endpoints) as etcd_w, NativeChannel(etcd_w) as channel:
        assert etcd_w.wait_ready(5)
        with pytest.raises(
            NoInstanceError, match=r"no passing instance of 'nobody' in etcd at .* under /services/nobody/"
        ):
            user_pb2_grpc.UserServiceStub(channel).GetUser(user_pb2.GetUserRequest(id="1"))


def test_unknown_policy_is_refused(consul_watcher):
    with pytest.raises(
        ValueError, match="invalid argument: policy: 'fastest'; use one of round_robin, random, weighted"
    ):
        PickerChannel(consul_watcher, policy="fastest")


@pytest.mark.parametrize("mode", ["picker", "native"])
def test_a_killed_instance_loses_its_traffic_without_failed_calls(cluster, consul_watcher, mode):
    """Steady calls across kill -9 of user-3: none fails, user-3 gets nothing after, and traffic returns after start."""
    make = (lambda w: PickerChannel(w, retries=2, eject_for=5.0)) if mode == "picker" else NativeChannel
    with make(consul_watcher) as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        failures, after_kill, total = [], collections.Counter(), 0
        killed_at = None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.0:
            if killed_at is None and time.monotonic() - t0 > 1.0:
                cluster.kill("user-3")
                killed_at = time.monotonic()
            try:
                who = stub.CreateUser(new_user(), timeout=2).served_by
            except grpc.RpcError as err:
                failures.append(err.code())
                continue
            finally:
                total += 1
            if killed_at is not None:
                after_kill[who] += 1
        retried = getattr(channel, "retried", "n/a")
        print(
            mode, f"{total} calls, {len(failures)} failed, {retried} attempts retried, after kill: {dict(after_kill)}"
        )
        assert failures == []
        assert after_kill["user-3"] == 0 and after_kill["user-1"] > 0 and after_kill["user-2"] > 0
        cluster.start("user-3")
        assert consul_watcher.wait_for(lambda xs: [i.id for i in xs] == IDS, 15)
        # The picker's ejection of user-3 runs out; the native channel's new subchannel connects.
        time.sleep(5.0 if mode == "picker" else 0.5)
        counts = served_by(channel, 60)
        assert counts["user-3"] > 5, counts


def test_the_native_channel_retries_unavailable_on_another_instance(cluster, consul_watcher):
    """gRPC's own retry policy (NativeChannel's service config): an instance that fails every call with UNAVAILABLE
    costs no failed call, and serves none."""
    failing = admin(cluster, "user-1")
    failing.set_faults(error_rate=1.0)
    try:
        with NativeChannel(consul_watcher) as channel:
            counts = served_by(channel, 30)
            listed = {i.id for i in consul_watcher.instances()}
    finally:
        failing.set_faults(error_rate=0.0)
    assert "user-1" in listed, f"the failing instance stayed in the channel's target: {listed}"
    assert sum(counts.values()) == 30 and set(counts) == {"user-2", "user-3"}, counts


def test_an_unreachable_registry_is_named_in_the_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    with ConsulWatcher("user", dead, wait="1s") as watcher, PickerChannel(watcher, ready_timeout=0.5) as channel:
        time.sleep(0.5)
        with pytest.raises(NoInstanceError) as err:
            user_pb2_grpc.UserServiceStub(channel).GetUser(user_pb2.GetUserRequest(id="u-1"), timeout=2)
    assert err.value.details().startswith(
        f"no passing instance of 'user' in consul at {dead} (unreachable: ConnectionError"
    )
