"""Runtime settings from a configuration centre (lesson 10), against real Consul and etcd servers.

An in-process user service follows each store; the tests write through the store clients and read what the
instance applied through its admin port, the way the lesson and `discovery-lab config` do.
"""

from __future__ import annotations

import time

import grpc
import pytest
from labs import local_lab

from lab_services.core.wait import wait_until
from lab_services.service import AdminClient, UserServer, user_pb2, user_pb2_grpc
from lab_services.service.config_store import CasConflict, StoreUnavailable, open_store
from lab_services.service.settings import SCHEMA, InvalidSetting, RuntimeSettings, effective_texts, validate


def test_validate_names_the_key_and_why():
    assert validate("latency_ms", " 250 ") == 250 and validate("signups_enabled", "False") is False
    for key, text, reason in (
        ("latency_ms", "fast", "must be an integer from 0 to 5000, got 'fast'"),
        ("latency_ms", "5001", "must be from 0 to 5000, got 5001"),
        ("signups_enabled", "yes", "must be true or false"),
        ("greeting", "  ", "must be 1 to 200 characters"),
        ("colour", "red", "unknown setting"),
    ):
        with pytest.raises(InvalidSetting, match=f"^{key}: {reason}"):
            validate(key, text)


def test_a_bad_snapshot_is_rejected_whole_and_the_last_good_settings_kept():
    settings = RuntimeSettings(SCHEMA)
    assert settings.offer({"greeting": "hi", "latency_ms": "10"}, 5, "etcd")
    assert not settings.offer({"greeting": "bye", "latency_ms": "slow"}, 6, "etcd")
    report = settings.report()
    assert report["values"]["greeting"] == "hi" and report["revision"] == 5, "nothing of the bad snapshot was applied"
    assert report["rejected"]["revision"] == 6 and "latency_ms" in report["rejected"]["errors"]
    assert settings.offer({"greeting": "bye"}, 7, "etcd") and settings.report()["rejected"] is None
    assert settings.values["latency_ms"] == 0, "a key no longer stored goes back to its default"


def test_a_tag_override_wins_for_instances_with_that_tag():
    stored = {"greeting": "hi", "overrides/v2/greeting": "hi canary", "overrides/v3/latency_ms": "9"}
    assert effective_texts(stored, ("v2",)) == {"greeting": "hi canary"}
    assert effective_texts(stored, ("v1",)) == {"greeting": "hi"}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("settings"), consul_servers=1, etcd_members=1, services=0, prometheus=False
    ) as lab:
        yield lab


def _address(lab, kind: str) -> str:
    status = lab.status()
    return status.consul.http[0] if kind == "consul" else status.etcd.endpoints[0]


@pytest.fixture(params=["consul", "etcd"])
def follower(request, stores):
    """(store client, a started in-process instance following the same store, its admin client)."""
    prefix = f"config/test-{request.node.name.replace('[', '-').rstrip(']')}"
    store = open_store(request.param, _address(stores, request.param), prefix)
    store.delete_all()
    server = UserServer(config_store=open_store(request.param, _address(stores, request.param), prefix)).start()
    try:
        yield store, server, AdminClient(server.http_address)
    finally:
        server.stop(0)
        store.delete_all()


def _applied(admin: AdminClient, key: str, value, timeout: float = 10.0) -> dict:
    wait_until(lambda: admin.settings()["values"][key] == value, timeout, f"{key}={value!r} to be applied")
    return admin.settings()


def test_a_write_is_applied_live_and_reported_with_its_revision(follower):
    store, server, admin = follower
    revision = store.put("latency_ms", "150")
    report = _applied(admin, "latency_ms", 150)
    assert report["revision"] >= revision and report["source"] == store.kind and report["store"] == "reachable"
    assert "lab_settings_revision" in admin.metrics()
    with grpc.insecure_channel(server.address) as channel:
        started = time.monotonic()
        stub = user_pb2_grpc.UserServiceStub(channel)
        stub.CreateUser(user_pb2.CreateUserRequest(name="Ann", email="ann@example.com"), timeout=5)
        assert time.monotonic() - started >= 0.15, "the applied latency_ms delays calls"
        store.put("signups_enabled", "false")
        _applied(admin, "signups_enabled", False)
        with pytest.raises(grpc.RpcError) as refused:
            stub.CreateUser(user_pb2.CreateUserRequest(name="Bob", email="bob@example.com"), timeout=5)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "signups_enabled" in refused.value.details()


def test_a_bad_value_is_rejected_and_reported(follower):
    store, _server, admin = follower
    store.put("greeting", "hi")
    good = _applied(admin, "greeting", "hi")["revision"]
    bad = store.put("latency_ms", "fast")
    wait_until(lambda: admin.settings()["rejected"] is not None, 10, "the bad value to be rejected")
    report = admin.settings()
    assert report["rejected"]["revision"] == bad and "must be an integer" in report["rejected"]["errors"]["latency_ms"]
    assert report["revision"] == good and report["values"]["greeting"] == "hi", "the last good settings are kept"


def test_check_and_set_refuses_a_lost_update(follower):
    store, _server, _admin = follower
    first = store.put("greeting", "one")
    seen = store.snapshot().modified["greeting"]
    store.put("greeting", "two", cas=seen)  # writer A wins
    with pytest.raises(CasConflict, match="greeting: changed since revision"):
        store.put("greeting", "three", cas=seen)  # writer B read the same revision: refused
    assert store.snapshot().values["greeting"] == "two" and first <= seen


def test_history_and_rollback(follower):
    store, _server, admin = follower
    for text in ("a", "b", "c"):
        store.put("greeting", text)
    versions = store.history("greeting")
    assert [v.value for v in versions] == ["a", "b", "c"]
    assert store.value_at("greeting", versions[0].revision) == "a"
    store.put("greeting", store.value_at("greeting", versions[0].revision))
    _applied(admin, "greeting", "a")


def test_instances_keep_the_last_good_settings_while_the_store_is_gone(stores, tmp_path):
    """Stop the store: the instance says so and keeps its settings; start it: it catches up."""
    for kind in ("consul", "etcd"):
        store = open_store(kind, _address(stores, kind), "config/outage")
        store.delete_all()
        store.put("greeting", "before")
        server = UserServer(config_store=open_store(kind, _address(stores, kind), "config/outage")).start()
        admin = AdminClient(server.http_address)
        name = f"{kind}-1"
        try:
            _applied(admin, "greeting", "before")
            stores.stop(name)
            wait_until(
                lambda admin=admin: admin.settings()["store"] == "unreachable",
                20,
                f"the instance to notice {name} is gone",
            )
            report = admin.settings()
            assert report["values"]["greeting"] == "before" and "revision" in report["keeping"]
            with pytest.raises(StoreUnavailable):
                store.snapshot()
            stores.start(name)
            store.put("greeting", "after")
            report = _applied(admin, "greeting", "after", timeout=20)
            assert report["store"] == "reachable"
        finally:
            server.stop(0)
            if stores.state_of(name) != "running":
                stores.start(name)
            store.delete_all()


def test_the_cluster_config_names_a_store_it_has():
    from lab_services.runtime.config import ClusterConfig

    with pytest.raises(ValueError, match="config_store: 'redis'"):
        ClusterConfig(config_store="redis").validate()
    with pytest.raises(ValueError, match="settings are kept in etcd but it has no servers"):
        ClusterConfig(etcd_members=0, registry="consul", config_store="etcd").validate()
    following = ClusterConfig(config_store="consul")
    assert following.covers(ClusterConfig()) and not ClusterConfig().covers(following)
