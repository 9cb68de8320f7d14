"""EtcdRegistrar against real etcd members: lease-backed keys, keepalive, expiry, lost leases, restarts, failover."""

from __future__ import annotations

import json
import logging
import time

import pytest
from labs import EtcdNode, local_lab

from lab_services.core.instance import ServiceInstance
from lab_services.core.wait import wait_for
from lab_services.registry import Backoff, EtcdRegistrar, ServiceRegistration, parse_instance
from lab_services.registry.etcd import service_prefix

TTL = 2  # etcd's minimum lease TTL with default timings: the fastest drills


@pytest.fixture(scope="module")
def etcd(etcd_node):
    """The module's etcd member (conftest), with a client on it as `.kv`."""
    etcd_node.kv = etcd_node.client()
    yield etcd_node
    etcd_node.kv.close()


@pytest.fixture
def three_members(tmp_path):
    """Three etcd members in one raft cluster, started by the runtime."""
    with local_lab(tmp_path, consul_servers=0, etcd_members=3, services=0, prometheus=False) as lab:
        yield [EtcdNode(lab, f"etcd-{i}") for i in (1, 2, 3)]


def make_reg(service_id: str, port: int = 5001) -> ServiceRegistration:
    return ServiceRegistration(
        ServiceInstance(
            id=service_id,
            name="user",
            host="127.0.0.1",
            port=port,
            tags=("v1",),
            meta={"version": "v1", "metrics_port": "9101"},
        ),
        http_port=9101,
    )


def read(kv, key: str):
    """(value, lease id) of `key`, or (None, None) if it is absent."""
    value, meta = kv.get(key)
    return (value, meta.lease_id) if value is not None else (None, None)


def test_registers_json_under_a_lease_refreshes_it_and_stop_removes_it(etcd):
    r = EtcdRegistrar(make_reg("user-5001"), endpoints=[etcd.endpoint], lease_ttl=TTL, prefix="/services")
    r.start()
    try:
        assert r.wait_registered(5), etcd.tail()
        assert r.key == "/services/user/user-5001"
        value, lease_id = read(etcd.kv, r.key)
        assert lease_id == r.lease_id and lease_id
        assert json.loads(value) == {
            "id": "user-5001",
            "name": "user",
            "address": "127.0.0.1:5001",
            "host": "127.0.0.1",
            "port": 5001,
            "tags": ["v1"],
            "meta": {"version": "v1", "metrics_port": "9101"},
        }
        ((listed, meta),) = list(etcd.kv.get_prefix(service_prefix("/services", "user")))
        instance = parse_instance(meta.key, listed)
        assert instance["address"] == "127.0.0.1:5001" and instance["key"] == r.key and instance["port"] == 5001

        # Three and a half TTLs: without refreshes the key would have expired.
        deadline = time.monotonic() + 3.5 * TTL
        while time.monotonic() < deadline:
            assert read(etcd.kv, r.key)[1] == lease_id, etcd.tail()
            time.sleep(0.25)
        assert r.registered
        assert etcd.kv.get_lease_info(lease_id).TTL > 0
    finally:
        r.stop()
    assert read(etcd.kv, r.key) == (None, None)
    assert etcd.kv.get_lease_info(lease_id).TTL == -1  # revoked, not left to expire
    assert not r.registered
    r.stop()  # idempotent


def test_crash_drill_key_expires_after_the_lease_ttl(etcd):
    r = EtcdRegistrar(make_reg("user-crash"), endpoints=[etcd.endpoint], lease_ttl=TTL)
    r.start()
    try:
        assert r.wait_registered(5), etcd.tail()
        r.stop(deregister=False)
        crashed = time.monotonic()
        assert read(etcd.kv, r.key)[0] is not None  # nothing removed by the "crash" itself
        wait_for(lambda: read(etcd.kv, r.key) == (None, None), TTL + 2, "the key to expire with its lease")
        assert time.monotonic() - crashed > 0.5
    finally:
        r.stop()


def test_lost_lease_and_deleted_key_are_put_back(etcd, caplog):
    caplog.set_level(logging.INFO, logger="lab_services.registry.etcd")
    r = EtcdRegistrar(make_reg("user-lost"), endpoints=[etcd.endpoint], lease_ttl=3)
    r.start()
    try:
        assert r.wait_registered(5), etcd.tail()
        first_lease = r.lease_id
        etcd.kv.revoke_lease(first_lease)  # as if it expired while etcd was unreachable
        assert read(etcd.kv, r.key) == (None, None)
        wait_for(lambda: read(etcd.kv, r.key)[1] not in (None, first_lease), 4, "a new lease and the key back")
        assert "lost lease" in caplog.text
        assert r.wait_registered(2)

        etcd.kv.delete(r.key)  # the lease lives on, the key is gone
        wait_for(lambda: read(etcd.kv, r.key)[0] is not None, 3, "the deleted key put back")
        assert read(etcd.kv, r.key)[1] == r.lease_id
    finally:
        r.stop()


def test_etcd_down_at_start_then_restarted_with_its_data(stopped_server, caplog):
    caplog.set_level(logging.INFO, logger="lab_services.registry.etcd")
    member = stopped_server("etcd")
    r = EtcdRegistrar(make_reg("user-restart"), endpoints=[member.endpoint], lease_ttl=TTL, backoff=Backoff(0.1, 0.5))
    r.start()
    try:
        assert not r.wait_registered(1.0)
        assert f"etcd at {member.endpoint} unreachable, retrying in" in caplog.text

        member.start()
        assert r.wait_registered(6), member.tail()
        member.kv = member.client()
        assert read(member.kv, r.key)[0] is not None
        member.kv.close()

        member.stop()
        wait_for(lambda: not r.registered, 3, "the registrar to notice etcd is gone")
        time.sleep(TTL + 0.5)  # longer than the lease: it expires on the clock, if not in etcd's data
        member.start()  # same data directory: the same member comes back
        assert r.wait_registered(8), member.tail()
        member.kv = member.client()
        value, lease_id = read(member.kv, r.key)
        assert value is not None and lease_id == r.lease_id
        # Still kept alive after the restart, past a couple of TTLs.
        time.sleep(2 * TTL)
        assert read(member.kv, r.key)[1] == r.lease_id and r.registered
        member.kv.close()
    finally:
        r.stop()


def test_fails_over_to_another_member(three_members):
    members = three_members
    r = EtcdRegistrar(make_reg("user-failover"), endpoints=[m.endpoint for m in members], lease_ttl=TTL)
    r.start()
    try:
        assert r.wait_registered(5)
        lease_id = r.lease_id
        in_use = next(m for m in members if m.endpoint == r.endpoint_in_use)
        in_use.stop()
        survivor = next(m for m in members if m is not in_use)
        kv = survivor.client()
        deadline = time.monotonic() + 3 * TTL
        while time.monotonic() < deadline:
            assert read(kv, r.key)[1] == lease_id, survivor.tail()
            time.sleep(0.25)
        assert r.endpoint_in_use != in_use.endpoint
        assert r.wait_registered(1) and r.lease_id == lease_id  # same lease, kept alive through another member
        kv.close()
    finally:
        r.stop()


def test_parse_instance_refuses_foreign_values():
    with pytest.raises(ValueError, match="/services/user/x: not a service instance"):
        parse_instance("/services/user/x", b"hello")
    with pytest.raises(ValueError, match="no field 'name'"):
        parse_instance(b"/services/user/x", b'{"id": "x"}')


def test_stop_after_the_lease_expired_is_quiet(etcd, caplog):
    """The crash drill then a clean stop: revoking an already expired lease is not a failure."""
    registrar = EtcdRegistrar(make_reg("expired-1"), endpoints=[etcd.endpoint], lease_ttl=2).start()
    assert registrar.wait_registered(10)
    registrar.stop(deregister=False)
    time.sleep(3.5)  # past the 2 s TTL: the lease is gone
    with caplog.at_level(logging.WARNING, logger="lab_services.registry.etcd"):
        registrar.stop()
    assert not [r for r in caplog.records if "could not deregister" in r.getMessage()]
