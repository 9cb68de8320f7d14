"""Consul DNS against a real lab with one address per instance: SRV and A answers, and a gRPC `dns://` channel."""

from __future__ import annotations

import collections
import itertools
import json
import os
import time

import grpc
import pytest
from labs import local_lab

from lab_services.discovery import a_records, dns_target, srv_records
from lab_services.service import user_pb2, user_pb2_grpc

ROUND_ROBIN = ("grpc.service_config", json.dumps({"loadBalancingConfig": [{"round_robin": {}}]}))
_numbers = itertools.count()
needs_c_ares = pytest.mark.skipif(
    os.environ.get("GRPC_DNS_RESOLVER", "").lower() == "native",
    reason="GRPC_DNS_RESOLVER=native ignores the DNS server named in a dns:// target",
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("dns"),
        consul_servers=1,
        etcd_members=1,
        services=3,
        prometheus=False,
        instance_addresses="distinct",
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def consul_dns(lab) -> str:
    return lab.status().consul.dns


def passing(lab) -> dict[str, str]:
    """{instance id: 'host:port'} of the running user-service instances."""
    return {s.id: s.address for s in lab.status().services if s.state == "running"}


def shared_port(lab) -> int:
    return int(next(iter(passing(lab).values())).rsplit(":", 1)[1])


def dns_channel(lab, consul_dns: str, *options) -> grpc.Channel:
    return grpc.insecure_channel(dns_target("user", consul_dns, shared_port(lab)), options=[ROUND_ROBIN, *options])


def served_by(channel: grpc.Channel, seconds: float = 0.0, calls: int = 0) -> collections.Counter:
    """Who answered CreateUser calls made back to back for `seconds` or `calls` calls."""
    stub = user_pb2_grpc.UserServiceStub(channel)
    counts: collections.Counter = collections.Counter()
    end = time.monotonic() + seconds
    while time.monotonic() < end or sum(counts.values()) < calls:
        n = next(_numbers)
        counts[
            stub.CreateUser(
                user_pb2.CreateUserRequest(name=f"dns {n}", email=f"dns{n}@example.com"), timeout=5
            ).served_by
        ] += 1
    return counts


def test_srv_lists_every_passing_instance_with_its_port(lab, consul_dns):
    records = srv_records("user", consul_dns)
    assert sorted(f"{r.address}:{r.port}" for r in records) == sorted(passing(lab).values()), records
    assert all(r.target.endswith(".consul.") for r in records)


def test_a_records_carry_one_loopback_address_per_instance(lab, consul_dns):
    addresses = a_records("user", consul_dns)
    assert addresses == sorted(a.rsplit(":", 1)[0] for a in passing(lab).values())
    assert len(set(addresses)) == 3 and all(a.startswith("127.0.0.") and a != "127.0.0.1" for a in addresses)


def test_unknown_service_has_no_records(consul_dns):
    assert srv_records("nobody", consul_dns) == [] and a_records("nobody", consul_dns) == []


def test_dns_target_names_the_server_in_the_authority():
    assert dns_target("user", "127.0.0.1:8600", 5000) == "dns://127.0.0.1:8600/user.service.consul:5000"
    assert dns_target("user", "127.0.0.1:8600", 5000, tag="v2") == "dns://127.0.0.1:8600/v2.user.service.consul:5000"
    with pytest.raises(ValueError, match="host:port"):
        dns_target("user", "127.0.0.1", 5000)


@needs_c_ares
def test_grpc_round_robin_over_dns_reaches_every_instance(lab, consul_dns):
    # Consul's DNS listens on a port other than 53: this passes only because gRPC's c-ares resolver
    # takes the server and its port from the target's authority.
    assert not consul_dns.endswith(":53")
    channel = dns_channel(lab, consul_dns)
    try:
        counts = served_by(channel, calls=90)
    finally:
        channel.close()
    assert sorted(counts) == sorted(passing(lab)) and all(c >= 20 for c in counts.values()), counts


@needs_c_ares
def test_a_new_instance_waits_for_re_resolution(lab, consul_dns):
    """Runs last: it adds user-4 and stops user-1.

    gRPC resolves a dns:// target when the channel starts and again only when a connection closes (what a
    server's `grpc.max_connection_age_ms` makes happen regularly), and then at most every
    `grpc.dns_min_time_between_resolutions_ms` (30 s by default).
    """
    old = set(passing(lab))
    prompt = dns_channel(lab, consul_dns, ("grpc.dns_min_time_between_resolutions_ms", 0))
    try:
        # round_robin calls the subchannels that are READY: give a loaded machine time to connect them all.
        first: collections.Counter = collections.Counter()
        deadline = time.monotonic() + 10
        while set(first) != old and time.monotonic() < deadline:
            first += served_by(prompt, calls=30)
        assert set(first) == old
        added = lab.add_service()["name"]
        assert len(srv_records("user", consul_dns)) == 4
        # Passing in Consul, yet the channel keeps calling the instances it resolved at the start.
        assert set(served_by(prompt, seconds=2.0)) == old

        # A graceful stop closes user-1's connection; the channel resolves again and finds user-4.
        lab.stop("user-1")
        seen: collections.Counter = collections.Counter()
        deadline = time.monotonic() + 10
        while added not in seen and time.monotonic() < deadline:
            seen += served_by(prompt, calls=20)
        assert added in seen, f"{added} never answered after re-resolution: {dict(seen)}"
    finally:
        prompt.close()

    # A fresh channel resolves now and sees the current set (three records fit Consul's UDP answer).
    fresh = dns_channel(lab, consul_dns)
    try:
        counts = served_by(fresh, calls=60)
    finally:
        fresh.close()
    assert set(counts) == set(passing(lab)) == (old - {"user-1"}) | {added}, counts
