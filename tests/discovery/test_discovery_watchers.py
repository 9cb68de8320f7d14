"""Consul and etcd watchers against a real cluster: snapshots, ordered events, and surviving a registry restart."""

from __future__ import annotations

import json
import socket
import time

import consul
import pyetcd
import pytest
from labs import local_lab

from lab_services.core.addresses import consul_http_address, etcd_endpoint
from lab_services.discovery import ConsulWatcher, EtcdWatcher

IDS = ["user-1", "user-2", "user-3"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_lab(tmp_path_factory.mktemp("disc"), consul_servers=1, etcd_members=1, services=3) as lab:
        yield lab


@pytest.fixture(scope="module")
def watchers(cluster):
    status = cluster.status()
    consul_w = ConsulWatcher("user", status.consul.http, wait="5s").start()
    etcd_w = EtcdWatcher("user", status.etcd.endpoints).start()
    yield {"consul": consul_w, "etcd": etcd_w}
    consul_w.stop()
    etcd_w.stop()


def ids(instances):
    return [i.id for i in instances]


@pytest.mark.parametrize("source", ["consul", "etcd"])
def test_watcher_sees_every_instance(watchers, cluster, source):
    w = watchers[source]
    assert w.wait_ready(10)
    assert w.wait_for(lambda xs: ids(xs) == IDS, 10), ids(w.instances())
    addresses = {s.id: s.address for s in cluster.status().services}
    assert {i.id: i.address for i in w.instances()} == addresses
    assert all(e.kind == "added" and e.source == source for e in w.events)


def test_stop_and_start_give_removed_then_added_in_order(watchers, cluster):
    marks = {s: len(w.events) for s, w in watchers.items()}
    stopped_at = time.time()
    cluster.stop("user-2")
    for w in watchers.values():
        assert w.wait_for(lambda xs: "user-2" not in ids(xs), 15), w.where
    started_at = time.time()
    cluster.start("user-2")
    for w in watchers.values():
        assert w.wait_for(lambda xs: ids(xs) == IDS, 15), w.where
    for source, w in watchers.items():
        new = [(e.kind, e.instance.id) for e in w.events[marks[source] :]]
        assert new == [("removed", "user-2"), ("added", "user-2")], (source, new)
        removed, added = w.events[marks[source] :]
        assert stopped_at <= removed.at <= started_at <= added.at <= time.time()
        print(
            f"{source}: removed {removed.at - stopped_at:.3f} s after stop(), "
            f"added {added.at - started_at:.3f} s after start()"
        )


def test_subscribers_get_events_on_the_watcher_thread(watchers, cluster):
    seen = []
    unsubscribe = watchers["etcd"].subscribe(seen.append)
    cluster.stop("user-3")
    assert watchers["etcd"].wait_for(lambda xs: "user-3" not in ids(xs), 15)
    unsubscribe()
    cluster.start("user-3")
    assert watchers["etcd"].wait_for(lambda xs: ids(xs) == IDS, 15)
    assert [(e.kind, e.instance.id) for e in seen] == [("removed", "user-3")]


@pytest.mark.parametrize("source, server", [("consul", "consul-1"), ("etcd", "etcd-1")])
def test_watcher_survives_a_registry_restart(watchers, cluster, source, server):
    """kill -9 the only server: the watch fails and backs off, keeps what it knew, follows changes once it is back."""
    w = watchers[source]
    errors = w.errors
    cluster.kill(server)
    deadline = time.monotonic() + 15
    while w.errors == errors and time.monotonic() < deadline:
        time.sleep(0.1)
    assert w.errors > errors, f"the {source} watch should fail while {server} is down"
    assert not w.connected
    assert ids(w.instances()) == IDS, "the last known instances are kept while the registry is down"
    down_for = time.monotonic()
    cluster.start(server)
    deadline = time.monotonic() + 15
    while not w.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    back_after = time.monotonic() - down_for
    # A restarted Consul may come back without the services; their registrars register them again.
    assert w.wait_for(lambda xs: ids(xs) == IDS, 30)
    # Write to the registry directly: the services' own registrars may still be backing off after the outage.
    t = time.time()
    remove = add_probe_instance(cluster, source)
    assert w.wait_for(lambda xs: "probe-1" in ids(xs), 15), "the watcher follows changes again"
    seen = time.time() - t
    remove()
    assert w.wait_for(lambda xs: ids(xs) == IDS, 15)
    print(
        f"{source}: {w.errors - errors} errors, reading again {back_after:.2f} s after start(); "
        f"a new instance seen {seen * 1000:.1f} ms after it was written"
    )


def add_probe_instance(cluster, source):
    """Register a fake 'user' instance straight in the registry; returns the function that removes it."""
    status = cluster.status()
    if source == "consul":
        host, port = consul_http_address(status.consul.http[0])
        agent = consul.Consul(host=host, port=port).agent
        agent.service.register("user", service_id="probe-1", address="127.0.0.1", port=1)
        return lambda: agent.service.deregister("probe-1")
    host, port = etcd_endpoint(status.etcd.endpoints[0])
    client = pyetcd.client(host=host, port=port)
    key = "/services/user/probe-1"
    client.put(
        key, json.dumps({"id": "probe-1", "name": "user", "address": "127.0.0.1:1", "host": "127.0.0.1", "port": 1})
    )
    return lambda: (client.delete(key), client.close())


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="service"):
        ConsulWatcher("")
    with pytest.raises(ValueError, match="consul_http"):
        ConsulWatcher("user", [])
    with pytest.raises(ValueError, match="endpoints"):
        EtcdWatcher("user", [])


def test_watchers_move_on_from_a_dead_server(cluster):
    """One address answers nothing; both watchers find the instances on the other (Consul tries the first first)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    status = cluster.status()
    with (
        ConsulWatcher("user", [dead, *status.consul.http], wait="5s") as consul_w,
        EtcdWatcher("user", [dead, *status.etcd.endpoints]) as etcd_w,
    ):
        for w in (consul_w, etcd_w):
            assert w.wait_for(lambda xs: ids(xs) == IDS, 10), (w.where, w.last_error)
            assert w.connected and dead not in w.where
        assert consul_w.errors >= 1


def test_etcd_watcher_keeps_following_after_a_compaction(cluster, watchers):
    """Compacting away the history the watch started from must not stop it: it re-reads and resumes."""
    w = watchers["etcd"]
    host, port = etcd_endpoint(cluster.status().etcd.endpoints[0])
    client = pyetcd.client(host=host, port=port)
    try:
        client.compact(client.get_prefix_response("/").header.revision, physical=True)
        remove = add_probe_instance(cluster, "etcd")
        assert w.wait_for(lambda xs: "probe-1" in ids(xs), 10), "a put after the compaction is seen"
        remove()
        assert w.wait_for(lambda xs: ids(xs) == IDS, 10), "and so is the delete"
        with pytest.raises(pyetcd.exceptions.RevisionCompactedError):
            list(client.watch_prefix("/services/user/", start_revision=1)[0])
    finally:
        client.close()


def test_a_filter_expression_is_applied_by_consul(cluster):
    # Consul 1.8's ?filter= reads Service.Meta: the watcher never receives the instances it leaves out.
    expr = 'Service.Meta.version == "v1" and Service.ID != "user-1"'
    with ConsulWatcher("user", cluster.status().consul.http, wait="5s", filter_expr=expr) as filtered:
        assert filtered.wait_for(lambda xs: ids(xs) == ["user-2", "user-3"], 10), ids(filtered.instances())
        assert not [e for e in filtered.events if e.instance.id == "user-1"]
