"""Every layout of instance keys a learner meets in one etcd: the lab's JSON, the Go articles' keys, etcd naming.

The watcher follows them all on a real etcd member; a key in none of them is reported once and skipped.
"""

from __future__ import annotations

import json
import logging

import pytest

from lab_services.discovery import EtcdWatcher
from lab_services.registry import parse_instance

PREFIX = "/dialects"
LAB_VALUE = {"id": "user-9", "name": "user", "address": "127.0.0.1:5009", "host": "127.0.0.1", "port": 5009}


@pytest.mark.parametrize(
    "key, value, dialect, instance_id, address",
    [
        ("/services/user/user-9", json.dumps(LAB_VALUE), "lab", "user-9", "127.0.0.1:5009"),
        ("/services/user/127.0.0.1:8080", "", "articles", "127.0.0.1:8080", "127.0.0.1:8080"),
        ("/services/user/127.0.0.1:8081", "127.0.0.1:8081", "articles", "127.0.0.1:8081", "127.0.0.1:8081"),
        ("/services/user/node-a", " 127.0.0.1:8082\n", "articles", "node-a", "127.0.0.1:8082"),
        (
            "/services/user/e1",
            '{"Op":0,"Addr":"127.0.0.1:8083","Metadata":null}',
            "etcd-naming",
            "e1",
            "127.0.0.1:8083",
        ),
    ],
)
def test_each_layout_decodes_to_one_instance(key, value, dialect, instance_id, address):
    instance = parse_instance(key.encode(), value.encode())
    assert (instance["dialect"], instance["id"], instance["address"], instance["name"]) == (
        dialect,
        instance_id,
        address,
        "user",
    )


@pytest.mark.parametrize(
    "value, why",
    [
        ("hello", "'hello' is not host:port"),
        ("127.0.0.1:0", "port from 1 to 65535"),
        ('{"Op":1,"Addr":"127.0.0.1:8083"}', "Op 1, not 0"),
        ('{"id": "x"}', "no field 'name'"),
        ('{"name": "user"}', "neither the lab's 'id' nor etcd naming's 'Addr'"),
        ("{not json", "Expecting property name"),
    ],
)
def test_what_is_in_no_layout_is_refused_with_the_key_and_why(value, why):
    with pytest.raises(ValueError, match="/services/user/x: not a service instance") as refused:
        parse_instance("/services/user/x", value)
    assert why in str(refused.value)


def test_an_empty_value_needs_an_address_as_the_last_segment():
    with pytest.raises(ValueError, match="'user-1' is not host:port"):
        parse_instance("/services/user/user-1", b"")
    with pytest.raises(ValueError, match="no service segment"):
        parse_instance("/127.0.0.1:8080", b"")


def test_the_watcher_follows_every_layout_and_reports_a_bad_key_once(etcd_node, caplog):
    kv = etcd_node.client()
    lease = kv.lease(60)
    try:
        kv.put(f"{PREFIX}/user/user-9", json.dumps(LAB_VALUE))
        kv.put(f"{PREFIX}/user/127.0.0.1:8080", "", lease=lease)  # as article 004 writes it: empty, leased
        kv.put(f"{PREFIX}/user/broken", "not an address")
        with (
            caplog.at_level(logging.WARNING, logger="lab_services.discovery.etcd_watcher"),
            EtcdWatcher("user", [etcd_node.endpoint], prefix=PREFIX) as watcher,
        ):
            assert watcher.wait_for(lambda xs: len(xs) == 2, 10), watcher.instances()
            assert {i.address for i in watcher.instances()} == {"127.0.0.1:5009", "127.0.0.1:8080"}
            # The same bad value again, and one that cannot even be decoded: the watch goes on.
            kv.put(f"{PREFIX}/user/broken", "not an address")
            kv.put(f"{PREFIX}/user/binary", b"\xff\xfe")
            kv.put(f"{PREFIX}/user/e1", '{"Op":0,"Addr":"127.0.0.1:8083"}')
            kv.put(f"{PREFIX}/user/plain", "127.0.0.1:8081")
            assert watcher.wait_for(lambda xs: len(xs) == 4, 10), watcher.instances()
            # The bad keys came before the last good one, so the watcher has read them by now.
            assert set(watcher.unreadable) == {f"{PREFIX}/user/broken", f"{PREFIX}/user/binary"}
            assert "'not an address' is not host:port" in watcher.unreadable[f"{PREFIX}/user/broken"]
            reports = [r.getMessage() for r in caplog.records if "broken" in r.getMessage()]
            assert len(reports) == 1, reports

            # A bad key fixed in place becomes an instance; one replaced by a bad value stops being one.
            kv.put(f"{PREFIX}/user/broken", "127.0.0.1:8084")
            kv.put(f"{PREFIX}/user/plain", "")
            assert watcher.wait_for(
                lambda xs: (
                    {i.address for i in xs} == {"127.0.0.1:5009", "127.0.0.1:8080", "127.0.0.1:8083", "127.0.0.1:8084"}
                ),
                10,
            ), watcher.instances()
            assert set(watcher.unreadable) == {f"{PREFIX}/user/binary", f"{PREFIX}/user/plain"}

            # Deletes remove instances whatever their layout; the articles' key goes with its lease.
            kv.delete(f"{PREFIX}/user/e1")
            lease.revoke()
            assert watcher.wait_for(lambda xs: {i.id for i in xs} == {"user-9", "broken"}, 10), watcher.instances()
            kv.delete(f"{PREFIX}/user/binary")
            kv.delete(f"{PREFIX}/user/plain")
            assert watcher.wait_for(lambda xs: not watcher.unreadable, 5), watcher.unreadable
    finally:
        kv.delete_prefix(PREFIX)
        kv.close()
