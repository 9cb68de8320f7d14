"""dns_config.only_passing on a real second agent: the lab's DNS serves a warning instance, the only-passing
agent's does not."""

from __future__ import annotations

import consul
import pytest

from lab_services.core.addresses import consul_http_address
from lab_services.core.wait import wait_until
from lab_services.discovery import srv_records
from lab_services.lessons.only_passing import OnlyPassingAgent
from lab_services.runtime import processes


def test_only_passing_leaves_the_warning_instance_out_of_dns(consul_node):
    status = consul_node.lab.status()
    host, port = consul_http_address(consul_node.http)
    client = consul.Consul(host=host, port=port)
    try:
        for n, state in ((1, "passing"), (2, "warning")):
            client.agent.service.register(
                "probe",
                service_id=f"probe-{n}",
                address="127.0.0.1",
                port=6000 + n,
                check={"CheckID": f"probe-{n}", "TTL": "10m", "Status": state},
            )
        wait_until(
            lambda: sorted(r.port for r in srv_records("probe", status.consul.dns)) == [6001, 6002], 5, "lab DNS"
        )
        with OnlyPassingAgent(consul_node.lab) as agent:
            wait_until(
                lambda: [r.port for r in srv_records("probe", agent.dns)] == [6001],
                10,
                "only-passing DNS",
                seen=lambda: str(srv_records("probe", agent.dns)),
            )
            name = agent.name
        assert not [r for r in processes.live_records(consul_node.lab.base) if r.name == name], (
            "the agent must be gone after the block"
        )
    finally:
        for n in (1, 2):
            client.agent.service.deregister(f"probe-{n}")
        client.http.session.close()


def test_a_lab_without_consul_is_named(etcd_node):
    with pytest.raises(ValueError, match="runs no Consul server to join"):
        OnlyPassingAgent(etcd_node.lab)
