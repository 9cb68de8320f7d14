"""Client agents and a second datacenter in the local runtime, against real Consul processes."""

from __future__ import annotations

import pytest
from labs import local_lab

from lab_services.cli import _print_status
from lab_services.core.addresses import consul_http_address
from lab_services.core.http import http_json
from lab_services.core.wait import wait_until
from lab_services.runtime.config import ClusterConfig


@pytest.fixture(scope="module")
def agents_lab(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("agents"),
        consul_servers=1,
        etcd_members=0,
        services=3,
        prometheus=False,
        registry="consul",
        consul_clients=2,
        datacenters=2,
    ) as lab:
        yield lab


@pytest.mark.parametrize(
    "shape, says",
    [
        ({"consul_clients": -1}, "consul_clients: -1; use 0 to 9"),
        ({"consul_clients": 10}, "consul_clients: 10; use 0 to 9"),
        ({"consul_clients": 2, "consul_servers": 0, "registry": "etcd"}, "consul_clients: client agents need servers"),
        ({"datacenters": 3}, "datacenters: 3; use 1 or 2"),
        ({"datacenters": 2, "consul_servers": 0, "registry": "etcd"}, "datacenters: a second datacenter joins"),
    ],
)
def test_bad_agent_shapes_are_refused_naming_the_field(shape, says):
    with pytest.raises(ValueError, match=says):
        ClusterConfig(**shape).validate()


def test_a_lab_with_client_agents_does_not_serve_a_lesson_without_them():
    with_clients = ClusterConfig(consul_clients=2, datacenters=2)
    assert with_clients.covers(ClusterConfig(consul_clients=2))
    assert not with_clients.covers(ClusterConfig())
    assert not ClusterConfig().covers(with_clients)


def test_each_client_agent_is_a_node_on_its_own_loopback_address(agents_lab):
    status = agents_lab.status()
    assert [consul_http_address(a)[0] for a in status.consul.clients] == ["127.0.0.51", "127.0.0.52"]
    members = {m["Name"]: m for m in http_json(f"http://{status.consul.http[0]}/v1/agent/members")}
    assert {
        name: (m["Addr"], m["Tags"]["role"], m["Status"]) for name, m in members.items() if name.startswith("node-")
    } == {"node-1": ("127.0.0.51", "node", 1), "node-2": ("127.0.0.52", "node", 1)}
    assert members["consul-1"]["Tags"]["role"] == "consul"
    assert set(status.processes_of("consul-client")) == {"node-1", "node-2"}


def test_services_register_with_the_agent_of_their_node(agents_lab):
    status = agents_lab.status()
    catalog = http_json(f"http://{status.consul.http[0]}/v1/catalog/service/user")
    assert {e["ServiceID"]: e["Node"] for e in catalog} == {"user-1": "node-1", "user-2": "node-2", "user-3": "node-1"}
    # The agent of node-2 holds the registration itself (it runs the check); the server's agent holds none.
    assert set(http_json(f"http://{status.consul.clients[1]}/v1/agent/services")) == {"user-2"}
    assert "user-2" not in http_json(f"http://{status.consul.http[0]}/v1/agent/services")


def test_the_second_datacenter_is_joined_over_the_wan(agents_lab):
    status = agents_lab.status()
    dc2 = status.consul.datacenters["dc2"][0]
    wait_until(
        lambda: sorted(http_json(f"http://{dc2}/v1/catalog/datacenters")) == ["dc2", "lab"], 30, "dc2 to see lab"
    )
    from_dc2 = http_json(f"http://{dc2}/v1/health/service/user?passing&dc=lab")
    assert sorted(e["Service"]["ID"] for e in from_dc2) == ["user-1", "user-2", "user-3"]
    assert http_json(f"http://{dc2}/v1/health/service/user") == []


def test_a_killed_client_agent_starts_again_through_the_runtime(agents_lab):
    agents_lab.kill("node-2")
    assert agents_lab.state_of("node-2") == "stopped"
    agents_lab.start("node-2")
    status = agents_lab.status()
    wait_until(
        lambda: any(
            e["Service"]["ID"] == "user-2"
            for e in http_json(f"http://{status.consul.http[0]}/v1/health/service/user?passing")
        ),
        30,
        "user-2 to pass again on node-2",
    )


def test_status_lists_the_client_agents_and_datacenters(agents_lab, capsys):
    _print_status(agents_lab.status())
    printed = capsys.readouterr().out
    assert "clients     127.0.0.51:" in printed and "datacenter  dc2: 127.0.0.1:" in printed
    assert "node-1        consul-client" in printed
