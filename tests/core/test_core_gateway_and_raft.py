"""etcd's JSON gateway client and the raft leader lookups, on the shared real lab (3 Consul servers, 3 etcd members)."""

from __future__ import annotations

import uuid

import pytest

from lab_services.core.etcd_gateway import EtcdGateway, prefix_end
from lab_services.core.raft import ConsulServer, consul_leader, etcd_leader


def test_prefix_end_selects_exactly_the_prefix():
    assert prefix_end("/services/user/") == "/services/user0"


def test_the_gateway_puts_counts_lists_and_deletes_keys_on_one_member(lab):
    gateway = EtcdGateway(lab.status().etcd.endpoints[0])
    prefix = f"/tests/gateway-{uuid.uuid4().hex[:6]}/"
    try:
        gateway.put(prefix + "a", "1")
        gateway.put(prefix + "b", "2")
        assert gateway.count(prefix + "a") == 1 and gateway.count(prefix + "c") == 0
        assert gateway.keys(prefix) == [prefix + "a", prefix + "b"]
    finally:
        gateway.delete(prefix + "a")
        gateway.delete(prefix + "b")
    assert gateway.keys(prefix) == []


def test_a_dead_endpoint_raises_oserror():
    with pytest.raises(OSError):
        EtcdGateway("127.0.0.1:1", timeout=0.5).status()


def test_leader_lookups_agree_with_the_runtime(lab):
    status = lab.status()
    processes = {p.name: p for p in status.processes}
    host = status.config.host
    members = {n: f"{host}:{p.ports['client']}" for n, p in processes.items() if p.kind == "etcd"}
    servers = {
        n: ConsulServer(f"{host}:{p.ports['http']}", f"{host}:{p.ports['server']}")
        for n, p in processes.items()
        if p.kind == "consul"
    }
    assert etcd_leader(members) == status.etcd.leader
    assert consul_leader(servers) == status.consul.leader
    # Asked alone, a follower still names the leader among all servers.
    follower = next(n for n in servers if n != status.consul.leader)
    assert consul_leader(servers, ask=[follower]) == status.consul.leader
    assert etcd_leader({"nobody": "127.0.0.1:1"}, timeout=0.3) is None
