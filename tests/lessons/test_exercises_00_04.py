"""Lessons 00-04's exercises on the real lab: the published solutions pass; each wrong answer is told what is wrong."""

from __future__ import annotations

import consul
import pytest
from labs import local_lab
from notebook_cells import unanswered

from lab_services.discovery import ConsulWatcher, PickerChannel
from lab_services.lessons import exercises
from lab_services.lessons.exercises import lesson_00, lesson_02, lesson_03, lesson_04


def test_02_ttl_solution_passes(consul_node):
    verdict = exercises.check("02-ttl", *lesson_02.my_ttl_registration(), consul_http=consul_node.http)
    assert verdict, verdict.message
    assert "went critical" in verdict.message


def test_02_ttl_wrong_answers_are_named(consul_node):
    register, heartbeat = lesson_02.my_ttl_registration()
    silent = exercises.check("02-ttl", register, lambda client, check_id, stop: None, consul_http=consul_node.http)
    # Consul starts a TTL check critical: without a heartbeat it never passes.
    assert not silent and silent.message.startswith("service:exercise-ttl never turned passing"), silent.message

    def without_check(client: consul.Consul, service_id: str, port: int) -> None:
        client.agent.service.register("exercise", service_id=service_id, port=port)

    unchecked = exercises.check("02-ttl", without_check, heartbeat, consul_http=consul_node.http)
    assert (
        not unchecked
        and unchecked.message == "exercise-ttl has no TTL check; pass check=consul.Check.ttl('5s') to register()"
    )
    half_written = exercises.check("02-ttl", None, heartbeat, consul_http=consul_node.http)
    assert half_written.message == "define register(client, service_id, port) and heartbeat(client, check_id, stop)"


@pytest.fixture(scope="module")
def small_lab(tmp_path_factory):
    """One Consul server, one etcd member and two v1 instances, plus a v2 one added as lesson 03 does."""
    with local_lab(
        tmp_path_factory.mktemp("ex"), consul_servers=1, etcd_members=1, services=2, prometheus=False
    ) as cluster:
        cluster.add_service(version="v2")
        yield cluster


def test_03_v2_filter_solution_passes(small_lab):
    verdict = exercises.check("03-v2-filter", lesson_03.v2_channel, consul_http=small_lab.status().consul.http[0])
    assert verdict, verdict.message
    assert "all 100 calls went there" in verdict.message


def test_03_v2_filter_wrong_answers_are_named(small_lab):
    http = small_lab.status().consul.http[0]

    def client_side(consul_http):
        return PickerChannel(ConsulWatcher("user", consul_http, meta={"version": "v2"}).start())

    def v1_filter(consul_http):
        return PickerChannel(ConsulWatcher("user", consul_http, filter_expr='Service.Meta.version == "v1"').start())

    def broken(consul_http):
        return PickerChannel(ConsulWatcher("user", consul_http, filter_expr='Service.Meta.version = "v2"').start())

    said = {
        name: exercises.check("03-v2-filter", f, consul_http=http).message
        for name, f in {"client": client_side, "v1": v1_filter, "broken": broken}.items()
    }
    assert said["client"].startswith(
        "your watcher has no filter_expr, so Consul sends it every version (it matches meta={'version': 'v2'}"
    )
    assert said["v1"] == (
        """Consul's answer to filter 'Service.Meta.version == "v1"' is ['user-1', 'user-2'], """
        "but the v2 instances are ['user-3']"
    )
    assert said["broken"].startswith("""Consul refused the filter 'Service.Meta.version = "v2"'""")
    assert (
        exercises.check("03-v2-filter", None, consul_http=http).message
        == "define v2_channel(consul_http) and pass it to the checker"
    )


def test_00_shape_solution_passes_and_wrong_fields_are_named(small_lab):
    status = small_lab.status()
    verdict = exercises.check(
        "00-shape", lesson_00.read_shape, consul_http=status.consul.http[0], etcd_endpoints=status.etcd.endpoints
    )
    assert verdict, verdict.message
    assert "etcd: leader etcd-1 of 1 members" in verdict.message

    def leader_as_process_name(client, etcd):
        return {**lesson_00.read_shape(client, etcd), "consul_leader": status.consul.leader}

    wrong = exercises.check(
        "00-shape", leader_as_process_name, consul_http=status.consul.http[0], etcd_endpoints=status.etcd.endpoints
    )
    assert wrong.message.startswith(f"consul_leader is {status.consul.leader!r}, the servers say '127.0.0.1:"), (
        wrong.message
    )
    partial = exercises.check(
        "00-shape",
        lambda c, e: {"consul_leader": c.status.leader()},
        consul_http=status.consul.http[0],
        etcd_endpoints=status.etcd.endpoints,
    )
    assert partial.message.startswith("missing consul_peers: the sorted Raft addresses"), partial.message


def test_04_lease_solution_passes(small_lab):
    verdict = exercises.check("04-lease", *lesson_04.lease_and_keepalive(), endpoints=small_lab.status().etcd.endpoints)
    assert verdict, verdict.message
    assert "the watch saw etcd delete it" in verdict.message


def test_04_lease_wrong_answers_are_named(small_lab):
    endpoints = small_lab.status().etcd.endpoints
    attach, keep_alive = lesson_04.lease_and_keepalive()

    def without_lease(etcd, key, ttl):
        lease = etcd.lease(ttl)
        etcd.put(key, "x")
        return lease

    unattached = exercises.check("04-lease", without_lease, keep_alive, endpoints=endpoints)
    assert unattached.message.startswith("/lesson04/exercise is attached to lease 0, not to the lease you returned"), (
        unattached.message
    )
    lazy = exercises.check("04-lease", attach, lambda lease, stop: stop.wait(), endpoints=endpoints)
    assert (
        lazy.message
        == "/lesson04/exercise expired while keep_alive() ran; call lease.refresh() more often than every 3 s"
    )
    assert (
        exercises.check("04-lease", None, keep_alive, endpoints=endpoints).message
        == "define attach(etcd, key, ttl) and keep_alive(lease, stop)"
    )


@pytest.mark.parametrize(
    "lesson,says",
    [
        ("00", "cluster_shape returned None; return a dict with the keys"),
        ("03", "v2_channel returned None; return lab.PickerChannel(lab.ConsulWatcher(...).start())"),
        ("04", "attach() returned None; return the lease from etcd.lease(3)"),
    ],
)
def test_an_unanswered_exercise_is_told_what_to_do(small_lab, lesson, says):
    """The notebook's own blank answer (tests/notebook_cells.py) against the real lab."""
    status = small_lab.status()
    exercise, args, kwargs = unanswered(
        lesson, status=status, CONSUL=status.consul.http[0], ENDPOINTS=status.etcd.endpoints
    )
    verdict = exercises.check(exercise, *args, **kwargs)
    assert not verdict and verdict.message.startswith(says), verdict.message


def test_02_an_unanswered_ttl_exercise_is_told_to_register(consul_node):
    exercise, args, kwargs = unanswered("02", CONSUL=consul_node.http)
    verdict = exercises.check(exercise, *args, **kwargs)
    assert not verdict and verdict.message.startswith("register() did not register 'exercise-ttl' with the agent"), (
        verdict.message
    )
