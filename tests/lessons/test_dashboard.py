"""The lab dashboard driven with button.click() against a real Consul, etcd and two user-service instances."""

from __future__ import annotations

import ipywidgets as widgets
import psutil
import pytest
from labs import local_lab

from lab_services.core.http import http_json
from lab_services.core.wait import wait_for
from lab_services.lessons import exercises
from lab_services.lessons.widgets import LabDashboard
from lab_services.registry.consul_health import ConsulHealth
from lab_services.runtime import processes


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("dashboard-lab"), consul_servers=1, etcd_members=1, services=2, prometheus=False
    ) as lab:
        yield lab


@pytest.fixture
def dashboard(cluster):
    board = LabDashboard(cluster, refresh_every=0.2)
    yield board
    board.stop()
    # Whatever a test did, the next one starts from the lab's clean shape.
    board.reset()
    assert all(
        p.state == "running" for p in cluster.status().processes if p.name in ("consul-1", "etcd-1", "user-1", "user-2")
    )


def enabled(board: LabDashboard, name: str) -> set[str]:
    return {action for action, button in board.buttons(name).items() if not button.disabled}


def row(board: LabDashboard, name: str) -> dict:
    return next(r for r in board.rows if r["name"] == name)


def test_dashboard_shows_leaders_processes_and_checks(dashboard):
    assert [r["name"] for r in dashboard.rows] == ["consul-1", "etcd-1", "user-1", "user-2"]
    assert row(dashboard, "consul-1")["leader"] and row(dashboard, "etcd-1")["leader"]
    assert "★" in dashboard.process_rows["consul-1"].info.value
    assert "Consul leader: <b>consul-1</b>" in dashboard.summary.value
    # Both instances pass their gRPC check in the catalog, and the table says so.
    assert {c.status for c in dashboard.checks["user-1"]} == {"passing"}
    assert "grpc" in dashboard.services.value and "passing" in dashboard.services.value
    assert "last update" in dashboard.last_update.value


def test_buttons_are_enabled_by_state(dashboard):
    for name in ("consul-1", "etcd-1", "user-1", "user-2"):
        assert enabled(dashboard, name) == {"kill", "stop", "pause"}, name


def test_kill_button_kills_the_real_process_and_start_brings_it_back(cluster, dashboard):
    pid = row(dashboard, "user-2")["pid"]
    assert processes.is_alive(pid)

    dashboard.buttons("user-2")["kill"].click()
    assert not psutil.pid_exists(pid), f"pid {pid} should be gone after kill"
    assert row(dashboard, "user-2")["state"] == "stopped" and row(dashboard, "user-2")["pid"] is None
    assert "stopped" in dashboard.process_rows["user-2"].state.value
    assert enabled(dashboard, "user-2") == {"start"}
    assert f"killed user-2 (pid {pid})" in dashboard.message.value

    dashboard.buttons("user-2")["start"].click()
    new_pid = row(dashboard, "user-2")["pid"]
    assert new_pid != pid and processes.is_alive(new_pid)
    assert row(dashboard, "user-2")["state"] == "running"
    assert enabled(dashboard, "user-2") == {"kill", "stop", "pause"}
    assert "started user-2" in dashboard.message.value


def test_pause_and_resume_buttons(cluster, dashboard):
    pid = row(dashboard, "user-1")["pid"]
    dashboard.buttons("user-1")["pause"].click()
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
    assert row(dashboard, "user-1")["state"] == "paused" and "paused" in dashboard.process_rows["user-1"].state.value
    assert enabled(dashboard, "user-1") == {"kill", "stop", "resume"}

    dashboard.buttons("user-1")["resume"].click()
    assert psutil.Process(pid).status() != psutil.STATUS_STOPPED
    assert row(dashboard, "user-1")["state"] == "running"
    assert enabled(dashboard, "user-1") == {"kill", "stop", "pause"}


def test_stop_button_deregisters_the_instance(cluster, dashboard):
    dashboard.buttons("user-1")["stop"].click()
    assert row(dashboard, "user-1")["state"] == "stopped"
    assert "stopped user-1" in dashboard.message.value
    # A graceful stop deregisters first, so the catalog no longer lists its checks.
    assert "user-1" not in dashboard.checks
    assert "not registered" in dashboard.services.value


def test_checks_say_when_no_consul_server_answers(cluster, dashboard):
    dashboard.buttons("consul-1")["pause"].click()
    try:
        assert dashboard.checks is None
        assert (
            "no Consul server answered" in dashboard.services.value and "not registered" not in dashboard.services.value
        )
    finally:
        dashboard.buttons("consul-1")["resume"].click()
    assert dashboard.checks and "passing" in dashboard.services.value


def test_a_failed_action_is_shown_not_raised(dashboard):
    dashboard.buttons("user-1")["stop"].click()
    assert dashboard.act("kill", "user-1") is None
    assert "kill user-1 failed" in dashboard.message.value and "start user-1" in dashboard.message.value


def test_reset_restores_the_clean_shape(cluster, dashboard):
    consul_http = cluster.status().consul.http[0]
    dashboard.buttons("user-1")["pause"].click()
    dashboard.buttons("user-2")["kill"].click()
    dashboard.start()
    canary = cluster.add_service(version="v2", meta={"track": "canary"})["name"]
    # The background thread only writes values: it lists the canary but leaves its buttons to the notebook's refresh.
    wait_for(lambda: f"new: {canary}" in dashboard.summary.value, 5, "the canary to be noticed")
    assert canary not in dashboard.process_rows and canary in dashboard.services.value
    dashboard.refresh()
    assert canary in dashboard.process_rows, "a refresh from the notebook adds rows for new processes"
    dashboard.stop()

    dashboard.reset_button.click()
    states = {r["name"]: r["state"] for r in dashboard.rows}
    assert states == {"consul-1": "running", "etcd-1": "running", "user-1": "running", "user-2": "running"}
    assert canary not in dashboard.process_rows, "an instance added since up is removed, not left listed as stopped"
    message = dashboard.message.value
    assert "resumed user-1" in message and "started user-2" in message and f"removed {canary}" in message
    assert "clean shape" in message
    with ConsulHealth(consul_http) as health:
        for service_id in ("user-1", "user-2"):
            health.wait_all(service_id, "passing", timeout=15)
        health.wait_gone(canary, timeout=10)

    dashboard.reset_button.click()
    assert "nothing to do" in dashboard.message.value


def test_refresh_thread_updates_the_label_and_sees_changes_made_elsewhere(cluster, dashboard):
    dashboard.start()
    assert dashboard.running and "refreshing every 0.2 s" in dashboard.last_update.value
    first = dashboard.last_update.value
    wait_for(lambda: dashboard.last_update.value != first, 5, "the last update label to change")

    # Paused behind the dashboard's back: the background thread notices and disables the right buttons.
    cluster.pause("etcd-1")
    try:
        wait_for(lambda: "paused" in dashboard.process_rows["etcd-1"].state.value, 5, "etcd-1 to show paused")
        assert enabled(dashboard, "etcd-1") == {"kill", "stop", "resume"}
    finally:
        cluster.resume("etcd-1")
    dashboard.stop()
    assert dashboard.wait(1) and not dashboard.running
    assert "not refreshing" in dashboard.last_update.value


def test_refresh_thread_stops_by_itself_after_its_duration(dashboard):
    dashboard.start(duration=0.3)
    assert dashboard.wait(5), "the refresh thread should end once its duration is over"
    assert "not refreshing" in dashboard.last_update.value


def test_reveal_solutions_toggle(cluster, dashboard):
    try:
        dashboard.reveal_toggle.value = True
        assert exercises.solutions_revealed()
        verdict = exercises.check("00-shape", ..., cluster.status().consul.http[0], cluster.status().etcd.endpoints)
        assert not verdict and verdict.solution == exercises.solution("00-shape")
        assert "One solution" in verdict._repr_html_()
        assert "revealed" in dashboard.message.value
    finally:
        dashboard.reveal_toggle.value = False
    assert not exercises.solutions_revealed() and not exercises.check("00-shape", ..., "127.0.0.1:1", []).solution


def test_add_panel_shows_a_lessons_widget(dashboard):
    class SplitPanel:
        def __init__(self):
            self.widget = widgets.HTML("user-1: 50% · user-2: 50%")

    panel = dashboard.add_panel(SplitPanel(), "Live call split")
    assert dashboard.panels.children[-1] is panel.widget
    assert "Live call split" in dashboard.panels.children[-2].value


@pytest.fixture(scope="module")
def agents_lab(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("dashboard-agents"),
        consul_servers=1,
        etcd_members=0,
        services=3,
        prometheus=False,
        registry="consul",
        consul_clients=2,
    ) as lab:
        yield lab


def test_with_client_agents_the_dashboard_shows_each_node_and_its_services(agents_lab, cluster):
    board = LabDashboard(agents_lab, refresh_every=0.2)
    try:
        assert board.nodes_section.layout.display is None, "a lab with client agents shows its nodes"
        rows = {r["node"]: r for r in board.node_rows}
        assert {n: (r["address"], r["agent"], r["process"], r["gossip"]) for n, r in rows.items()} == {
            "consul-1": (rows["consul-1"]["address"], "server", "running", "passing"),
            "node-1": ("127.0.0.51", "client", "running", "passing"),
            "node-2": ("127.0.0.52", "client", "running", "passing"),
        }
        # Services register with their own node's agent (lesson 12): none on the server's node.
        assert {n: r["services"] for n, r in rows.items()} == {
            "consul-1": {},
            "node-1": {"user-1": "passing", "user-3": "passing"},
            "node-2": {"user-2": "passing"},
        }
        assert "node-2" in board.nodes.value and "127.0.0.52" in board.nodes.value

        # Kill node-2's agent: gossip marks its node critical, and with it the services registered there (their own
        # check keeps its last status, "passing": the node's serfHealth is what takes them out of discovery).
        board.buttons("node-2")["kill"].click()
        wait_for(
            lambda: board.refresh() and {r["node"]: r for r in board.node_rows}["node-2"]["gossip"] == "critical",
            30,
            "serfHealth of node-2 to turn critical",
        )
        node2 = {r["node"]: r for r in board.node_rows}["node-2"]
        assert node2["process"] == "stopped" and node2["services"] == {"user-2": "critical"}
        own = http_json(f"http://{agents_lab.status().consul.http[0]}/v1/health/checks/user")
        assert {c["ServiceID"]: c["Status"] for c in own}["user-2"] == "passing"
        passing = http_json(f"http://{agents_lab.status().consul.http[0]}/v1/health/service/user?passing")
        assert sorted(e["Service"]["ID"] for e in passing) == ["user-1", "user-3"]
    finally:
        board.stop()
        agents_lab.reset()
    # A lab without client agents keeps the table hidden.
    plain = LabDashboard(cluster)
    assert plain.nodes_section.layout.display == "none" and plain.node_rows == []
