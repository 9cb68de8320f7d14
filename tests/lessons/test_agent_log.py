"""AgentLog reads a real Consul agent's own log: here, the warning that a 30 s DeregisterCriticalServiceAfter is 1 m."""

from __future__ import annotations

import consul
import pytest

from lab_services.core.addresses import consul_http_address
from lab_services.core.wait import WaitTimeout
from lab_services.lessons.agent_log import AgentLog
from lab_services.registry.consul_health import ConsulHealth


def test_consul_raises_a_30s_deregister_after_to_one_minute_and_says_so_only_in_its_log(consul_node):
    host, port = consul_http_address(consul_node.http)
    client = consul.Consul(host=host, port=port)
    with AgentLog(consul_node.lab) as log:
        client.agent.service.register(
            "dcsa",
            service_id="dcsa-1",
            address="127.0.0.1",
            port=1,
            check={"CheckID": "dcsa-ttl", "TTL": "3s", "DeregisterCriticalServiceAfter": "30s"},
        )
    try:
        (warning,) = log.wait_for("check has deregister interval below minimum")
        assert "check=dcsa-ttl" in warning and "minimum_interval=1m0s" in warning
        # What the agent keeps on disk still says 30s: the log is the only place the raise shows.
        assert ConsulHealth(consul_node.http).definition("dcsa-ttl")["DeregisterCriticalServiceAfter"] == "30s"
        with pytest.raises(WaitTimeout):
            log.wait_for("no agent ever logs this line", timeout=0.3)
    finally:
        client.agent.service.deregister("dcsa-1")
        client.http.session.close()


def test_an_address_that_is_no_agent_of_the_lab_is_named(consul_node):
    with pytest.raises(ValueError, match=r"127\.0\.0\.1:1 is not the HTTP address of a Consul agent"):
        AgentLog(consul_node.lab, "127.0.0.1:1")
