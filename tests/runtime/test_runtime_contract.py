"""The Cluster port's contract, the same test functions against both adapters: every process action, instances added
and removed, reset, logs, errors in the user's words, and `down(volumes=True)` leaving nothing behind.

The local adapter runs in `make test`'s local pytest run; the compose one (marker `compose`) in the run beside it.
"""

from __future__ import annotations

import pytest
from docker_engine import require_engine
from labs import local_lab

from lab_services.core.errors import BadInputError, LabError, NotRunningError
from lab_services.core.etcd_gateway import EtcdGateway
from lab_services.core.http import http_json
from lab_services.core.wait import wait_until
from lab_services.runtime import Action, Cluster, ClusterConfig, UnknownProcessError, open_cluster, processes

SHAPE = {"consul_servers": 1, "etcd_members": 1, "services": 2, "prometheus": False}
ADAPTERS = [pytest.param("local", id="local"), pytest.param("compose", id="compose", marks=pytest.mark.compose)]


@pytest.fixture(scope="module", params=ADAPTERS)
def cluster(request, tmp_path_factory):
    if request.param == "local":
        with local_lab(tmp_path_factory.mktemp("contract"), **SHAPE) as lab:
            yield lab
        return
    request.getfixturevalue("local_lab_down")
    require_engine()
    lab = open_cluster(None, "compose")
    try:
        lab.launch(ClusterConfig(**SHAPE))
        yield lab
    finally:
        lab.down(volumes=True)


def passing(lab: Cluster) -> list[str]:
    entries = http_json(f"http://{lab.status().consul.http[0]}/v1/health/service/user?passing")
    return sorted(e["Service"]["ID"] for e in entries)


def in_etcd(lab: Cluster) -> list[str]:
    return sorted(k.rsplit("/", 1)[1] for k in EtcdGateway(lab.status().etcd.endpoints[0]).keys("/services/user/"))


def data_left(lab: Cluster) -> list[str]:
    """What `down(volumes=True)` must remove: the local lab's processes and data directory; the compose project's
    containers, volumes and Consul data directories."""
    if lab.backend == "local":
        return [r.name for r in processes.live_records(lab.base)] + [str(p) for p in lab.base.glob("cluster")]
    from lab_services.runtime.compose import engine, topology

    client = engine.client()
    label = {"label": f"com.docker.compose.project={topology.PROJECT}"}
    left = [c.name for c in client.containers.list(all=True, filters=label)]
    left += [v.name for v in client.volumes.list(filters=label)]
    return left + [str(p) for p in (lab.base / "compose").glob("consul-*")]


def instances(lab: Cluster) -> list[str]:
    return [s.id for s in lab.status().services]


def test_a_running_lab_is_found_and_described(cluster):
    assert cluster.running() and cluster.published()["status"]["backend"] == cluster.backend
    status = cluster.status()
    assert status.consul.leader and status.etcd.leader and len(status.services) >= 2
    assert all(p.state == "running" and p.pid and p.log_command for p in status.processes)
    assert passing(cluster) == instances(cluster) and in_etcd(cluster) == instances(cluster)


@pytest.mark.parametrize("action", ["kill", "stop"])
def test_kill_and_stop_take_an_instance_away_and_start_brings_it_back(cluster, action):
    first, *others = instances(cluster)
    pid = cluster.status().service(first).pid
    result = cluster.act(first, Action(action))
    assert result["name"] == first and result["pid"] == pid and not processes.is_alive(pid)
    assert cluster.state_of(first) == "stopped"
    # A crash leaves the registration to its check; a graceful stop deregisters before it exits.
    wait_until(lambda: passing(cluster) == others, 15, f"Consul dropping {first} after {action}")
    wait_until(lambda: in_etcd(cluster) == others, 20, f"etcd dropping {first} after {action}")
    started = cluster.start(first)
    assert started["pid"] != pid and cluster.state_of(first) == "running"
    assert passing(cluster) == instances(cluster)
    assert cluster.start(first)["already_running"] is True


def test_pause_hangs_an_instance_until_resume(cluster):
    last = instances(cluster)[-1]
    cluster.pause(last)
    assert cluster.state_of(last) == "paused" and cluster.status().service(last).state == "paused"
    wait_until(lambda: last not in passing(cluster), 15, "a hung instance failing its check")
    cluster.resume(last)
    assert cluster.state_of(last) == "running"
    wait_until(lambda: last in passing(cluster), 15, "the resumed instance passing")


def test_names_and_actions_that_do_not_exist_are_refused_in_the_users_words(cluster):
    with pytest.raises(UnknownProcessError, match=r"no lab process named 'user-99'; the lab has: consul-1"):
        cluster.kill("user-99")
    with pytest.raises(BadInputError, match=r"action: 'explode'; use one of kill, stop, start, pause, resume"):
        cluster.act("user-1", "explode")
    with pytest.raises(BadInputError, match=r"'user-1' was not added with add_service"):
        cluster.remove_service("user-1")
    cluster.stop("user-1")
    try:
        with pytest.raises(NotRunningError, match=r"user-1 is not running; `start user-1` brings it back"):
            cluster.pause("user-1")
    finally:
        cluster.start("user-1")


def test_an_added_canary_passes_and_reset_puts_the_lab_back(cluster):
    before = instances(cluster)
    added = cluster.add_service(version="v2", meta={"weight": "3"})
    assert cluster.added_services() == [added["name"]] and added["version"] == "v2"
    entry = next(
        e
        for e in http_json(f"http://{cluster.status().consul.http[0]}/v1/health/service/user?passing")
        if e["Service"]["ID"] == added["name"]
    )
    meta = entry["Service"]["Meta"]
    assert (meta["version"], meta["weight"], entry["Service"]["Tags"]) == ("v2", "3", ["v2"])
    cluster.kill("etcd-1")
    cluster.pause(before[0])
    steps = cluster.reset()
    assert steps[:3] == [f"resumed {before[0]}", f"removed {added['name']}", "started etcd-1"]
    assert cluster.added_services() == [] and instances(cluster) == before
    assert all(p.state == "running" for p in cluster.status().processes)
    assert passing(cluster) == before


def test_a_process_log_only_grows(cluster):
    before = len(cluster.log_text("consul-1"))
    cluster.stop("user-1")
    cluster.start("user-1")
    wait_until(lambda: len(cluster.log_text("consul-1")) > before, 10, "consul-1 logging the instance's return")
    assert cluster.log_text("consul-1").startswith(cluster.log_text("consul-1")[:before])


def test_down_with_volumes_leaves_nothing_and_a_second_down_is_safe(cluster):
    """Last in the module: the lab goes down here."""
    cluster.down(volumes=True)
    assert not cluster.running() and cluster.published() is None
    assert data_left(cluster) == []
    cluster.down(volumes=True)
    with pytest.raises(NotRunningError, match=r"no lab is running in .*; start one with `discovery-lab"):
        cluster.status()
    with pytest.raises(LabError):
        cluster.add_service()
