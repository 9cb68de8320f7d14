"""Lesson 12's experiments and exercise on real Consul agents: gossip, anti-entropy, consistency, two datacenters."""

from __future__ import annotations

import pytest
from labs import local_lab
from notebook_cells import unanswered

from lab_services.lessons import exercises
from lab_services.lessons import inside_consul as ic
from lab_services.lessons.exercises import lesson_12


@pytest.fixture(scope="module")
def consul_lab(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("inside"),
        consul_servers=3,
        etcd_members=0,
        services=2,
        prometheus=False,
        registry="consul",
        consul_clients=2,
        datacenters=2,
    ) as lab:
        yield lab


def quiet(_: str) -> None:
    """Progress lines are for learners; tests keep their logs short."""


def test_members_and_nodes_tell_servers_from_client_agents(consul_lab):
    server = consul_lab.status().consul.http[0]
    roles = {r["node"]: (r["role"], r["gossip status"]) for r in ic.members(server).rows}
    assert roles["node-1"] == ("client", "alive") and roles["consul-2"] == ("server", "alive")
    nodes = {r["node"]: r for r in ic.nodes_and_services(server).rows}
    assert nodes["node-2"]["services"] == "user-2" and nodes["node-2"]["address"] == "127.0.0.52"
    assert ic.instances_on(server, "user", "node-1") == ["user-1"]


def test_a_killed_agent_takes_its_node_and_services_out_through_serf(consul_lab):
    failure = ic.node_failure(consul_lab, "node-1", progress=quiet)
    assert failure["checks while down"]["serfHealth"] == "critical"
    # The service's own check keeps its last result: only the node check can say the node is gone.
    assert failure["checks while down"]["service:user-1:grpc"] == "passing"
    assert failure["instance processes while down"] == {"user-1": "running"}
    assert failure["gossip status while down"] == "failed"
    assert 0 < failure["seconds to serfHealth critical"] <= failure["seconds to leave ?passing"]


def test_a_node_without_instances_is_refused(consul_lab):
    with pytest.raises(ValueError, match="no instance of 'user' is registered on 'consul-1'"):
        ic.node_failure(consul_lab, "consul-1", progress=quiet)


def test_a_lone_follower_answers_stale_reads_only(consul_lab):
    result = ic.reads_without_quorum(consul_lab, progress=quiet)
    before = {r["mode"]: r for r in result["before"].rows}
    during = {r["mode"]: r for r in result["during"].rows}
    assert all(r["status"] == 200 and r["X-Consul-KnownLeader"] for r in before.values())
    assert during["stale"]["status"] == 200 and during["stale"]["X-Consul-KnownLeader"] is False
    assert during["stale"]["X-Consul-LastContact (ms)"] > before["stale"]["X-Consul-LastContact (ms)"]
    for mode in ("default", "consistent"):
        assert (during[mode]["status"], during[mode]["answer"]) == (500, "No cluster leader")
    assert consul_lab.status().consul.leader


def test_the_agent_writes_back_what_the_catalog_lost(consul_lab):
    server = consul_lab.status().consul.http[0]
    agent = ic.agent_address(consul_lab, "node-2")
    watch = ic.AntiEntropyWatch(server, agent, "node-2", "user", "user-2").start()
    assert not watch.in_catalog() and watch.in_agent()
    assert "reload" in ic.consul_reload(agent).lower()
    assert watch.wait(30, progress=quiet) > 0
    assert watch.in_catalog()


def test_consul_reload_re_adds_the_agents_services_and_its_sync_of_changes_writes_them(consul_lab):
    server = consul_lab.status().consul.http[0]
    agent = ic.agent_address(consul_lab, "node-2")
    watch = ic.AntiEntropyWatch(server, agent, "node-2", "user", "user-2").start()
    lines = ic.reload_log(agent, "user-2")
    assert watch.wait(30, progress=quiet) > 0
    restored = next(i for i, line in enumerate(lines) if "restored service definition from file" in line)
    assert any(line.startswith("agent: Synced service") for line in lines[restored:]), lines


def test_a_prepared_query_in_dc2_fails_over_to_the_first_datacenter(consul_lab):
    dc2 = consul_lab.status().consul.datacenters["dc2"][0]
    assert sorted(ic.datacenters(dc2)) == ["dc2", "lab"]
    assert ic.instances_in(dc2, "user").rows == []
    assert {r["instance"] for r in ic.instances_in(dc2, "user", dc="lab").rows} <= {"user-1", "user-2"}
    local = ic.run_prepared_query(dc2, {"Name": "t-local", "Service": {"Service": "user", "OnlyPassing": True}})
    assert (local.datacenter, local.failovers, local.instances) == ("dc2", 0, [])
    failover = ic.run_prepared_query(
        dc2,
        {
            "Name": "t-failover",
            "Service": {"Service": "user", "OnlyPassing": True, "Failover": {"Datacenters": ["lab"]}},
        },
    )
    assert (failover.datacenter, failover.failovers) == ("lab", 1) and failover.instances
    with pytest.raises(ValueError, match="cannot unmarshal string"):
        ic.run_prepared_query(dc2, {"Service": {"Service": "user", "Failover": {"Datacenters": "lab"}}})


def test_the_diagnosis_solution_passes_and_wrong_answers_are_told_why(consul_lab):
    assert exercises.check("12-diagnose", lesson_12.diagnose, cluster=consul_lab)
    always_service = lambda address, service: {**(lesson_12.diagnose(address, service) or {}), "cause": "service"}  # noqa: E731
    verdict = exercises.check("12-diagnose", always_service, cluster=consul_lab)
    assert not verdict and "cause 'service' is wrong when its own check still says passing" in verdict.message
    assert "pass a function" in exercises.check("12-diagnose", None, cluster=consul_lab).message
    exercise, args, kwargs = unanswered("12", cluster=consul_lab)  # the notebook's own blank answer
    assert "the keys instance, node and cause" in exercises.check(exercise, *args, **kwargs).message
