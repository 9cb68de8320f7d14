"""The lesson widgets driven with button.click() against a real Consul, etcd and user service."""

from __future__ import annotations

import pytest
from labs import local_lab

from lab_services.core.instance import ServiceInstance
from lab_services.lessons.widgets import ClusterOverview, HealthBoard
from lab_services.registry.consul import ConsulRegistrar
from lab_services.registry.consul_health import ConsulHealth
from lab_services.registry.spec import CheckSpec, ServiceRegistration
from lab_services.service import UserServer


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("widgets-lab"), consul_servers=1, etcd_members=1, services=1, prometheus=False
    ) as lab:
        yield lab


@pytest.fixture(scope="module")
def consul_http(cluster) -> str:
    return cluster.status().consul.http[0]


@pytest.fixture
def registered(consul_http):
    """An in-process user service registered with gRPC, HTTP and TCP checks; deregistered and stopped afterwards."""
    server = UserServer(name="widget-test").start()
    registration = ServiceRegistration(
        ServiceInstance(id=server.instance_id, name="widget-test", host="127.0.0.1", port=server.port),
        http_port=server.http_port,
        checks=[CheckSpec("grpc"), CheckSpec("http"), CheckSpec("tcp")],
    )
    registrar = ConsulRegistrar(registration, consul_http=consul_http).start()
    assert registrar.wait_registered(5), registrar.last_error
    with ConsulHealth(consul_http) as health:
        health.wait_all(server.instance_id, "passing", timeout=10)
    yield server, registration
    registrar.stop()
    server.stop(grace=0)


def test_overview_marks_the_leaders_and_lists_every_process(cluster):
    overview = ClusterOverview(cluster)
    by_name = {row["name"]: row for row in overview.rows}
    assert set(by_name) == {"consul-1", "etcd-1", "user-1"}
    assert by_name["consul-1"]["leader"] and by_name["etcd-1"]["leader"]
    assert not by_name["user-1"]["leader"]
    assert by_name["consul-1"]["version"] == cluster.status().binaries["consul"]["version"]
    assert by_name["user-1"]["address"] == cluster.status().services[0].address
    assert "consul-1" in overview.summary.value and "consul-1" in overview.table.value


def test_overview_refresh_button_shows_a_stopped_service(cluster):
    overview = ClusterOverview(cluster)
    cluster.stop("user-1")
    try:
        overview.refresh_button.click()
        row = next(r for r in overview.rows if r["name"] == "user-1")
        assert row["state"] == "stopped" and row["pid"] is None
        assert "2 of 3 processes running" in overview.summary.value
    finally:
        cluster.start("user-1")
    overview.refresh_button.click()
    assert next(r for r in overview.rows if r["name"] == "user-1")["state"] == "running"


def test_health_board_buttons_flip_health_and_time_consul(consul_http, registered):
    server, registration = registered
    grpc_id, http_id, tcp_id = registration.check_ids()
    board = HealthBoard(consul_http, server.instance_id, server.http_address, poll_every=0.05).start(duration=30)
    try:
        board.not_serving_button.click()
        assert server.health.get("") == "NOT_SERVING"
        assert "NOT_SERVING" in board.reported.value
        assert board.seconds_after_flip(grpc_id, "critical", timeout=10) < 5
        assert board.seconds_after_flip(http_id, "critical", timeout=10) < 5
        assert board.consul.status(tcp_id) == "passing"  # a TCP check only connects

        board.serving_button.click()
        assert board.seconds_after_flip(grpc_id, "passing", timeout=10) < 5
        statuses = [t.status for t in board.transitions(grpc_id)]
        assert statuses[-3:] == ["passing", "critical", "passing"]
        assert "critical" in board.history.value
    finally:
        board.stop()
    assert board.wait(1) and not board.running
    assert "not polling" in board.polling.value


def test_health_board_stops_by_itself_after_its_duration(consul_http, registered):
    server, _ = registered
    board = HealthBoard(consul_http, server.instance_id, server.http_address, poll_every=0.05).start(duration=0.3)
    assert board.wait(5), "the poll thread should end once its duration is over"
    with pytest.raises(RuntimeError, match="no flip yet"):
        board.seconds_after_flip("anything", "critical")
    board.stop()
