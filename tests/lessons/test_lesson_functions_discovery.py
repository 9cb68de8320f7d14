"""The functions that replaced long cells of lessons 03 and 05, on a real Consul: the SRV ports DNS answers, and a
lesson's own instances started and registered with a gRPC check."""

from __future__ import annotations

import consul
import pytest

from lab_services.core.addresses import consul_http_address
from lab_services.core.wait import wait_until
from lab_services.lessons.dns_answers import srv_ports
from lab_services.lessons.instances import start_registered
from lab_services.registry.consul_health import ConsulHealth


@pytest.fixture
def agent(consul_node):
    host, port = consul_http_address(consul_node.http)
    client = consul.Consul(host=host, port=port)
    yield client
    client.http.session.close()


def test_srv_ports_waits_for_the_ports_it_expects_and_lists_warning_instances_too(consul_node, agent):
    dns = consul_node.lab.status().consul.dns
    for n, state in ((1, "passing"), (2, "warning"), (3, "critical")):
        agent.agent.service.register(
            "srv-test",
            service_id=f"srv-test-{n}",
            address="127.0.0.1",
            port=7000 + n,
            check={"CheckID": f"srv-test-{n}", "TTL": "10m", "Status": state},
        )
    try:
        assert srv_ports("srv-test", dns, expect=[7002, 7001]) == [7001, 7002]
        # Critical instances never come: after the wait it answers what DNS says instead of raising.
        assert srv_ports("srv-test", dns, expect=[7001, 7002, 7003], timeout=0.5) == [7001, 7002]
    finally:
        for n in (1, 2, 3):
            agent.agent.service.deregister(f"srv-test-{n}")
    assert srv_ports("srv-nobody", dns) == []


def test_start_registered_starts_instances_that_pass_their_grpc_check_and_stop_deregisters_them(consul_node):
    servers, registrars = start_registered("registered-test", 2, consul_http=consul_node.http)
    try:
        assert len(servers) == len(registrars) == 2
        assert [r.registration.instance.id for r in registrars] == list(servers)
        assert all(r.registration.instance.port == servers[r.registration.instance.id].port for r in registrars)
        assert [r.registration.check_ids() for r in registrars] == [[f"service:{i}:grpc"] for i in servers]
        with ConsulHealth(consul_node.http) as health:
            wait_until(
                lambda: sorted(health.instances("registered-test", passing=True)) == sorted(servers),
                15,
                "both instances passing their gRPC check",
            )
    finally:
        for registrar in registrars:
            registrar.stop()
        for server in servers.values():
            server.stop(grace=0)
    assert all(consul_node.service(service_id) is None for service_id in servers)


def test_start_registered_refuses_a_count_below_one():
    with pytest.raises(ValueError, match="count: 0; start at least one instance"):
        start_registered("registered-test", 0, consul_http="127.0.0.1:8500")
