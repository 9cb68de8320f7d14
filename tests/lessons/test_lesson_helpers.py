"""The helpers lessons 00-02 call: environment check, Consul health reads and waits, call-mode helpers, exercises."""

from __future__ import annotations

import time

import grpc
import pytest
from labs import local_lab

from lab_services.core.instance import ServiceInstance
from lab_services.core.table import Table
from lab_services.lessons import calls, exercises, reflection
from lab_services.lessons.environment import check_environment
from lab_services.lessons.exercises import lesson_01
from lab_services.registry.consul import ConsulRegistrar
from lab_services.registry.consul_health import ConsulHealth
from lab_services.registry.spec import CheckSpec, ServiceRegistration
from lab_services.service import AdminClient, UserServer, user_pb2, user_pb2_grpc


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("helpers-lab"),
        consul_servers=1,
        etcd_members=0,
        services=0,
        prometheus=False,
        registry="none",
    ) as lab:
        yield lab


@pytest.fixture(scope="module")
def consul_http(cluster) -> str:
    return cluster.status().consul.http[0]


@pytest.fixture
def server():
    srv = UserServer(name="helpers").start()
    yield srv
    srv.stop(grace=0)


@pytest.fixture
def stub(server):
    with grpc.insecure_channel(server.address) as channel:
        yield user_pb2_grpc.UserServiceStub(channel)


def test_environment_check_passes_here_and_names_each_row():
    report = check_environment()
    assert report.ok, report.problems
    names = {row["name"] for row in report.rows}
    assert {"python", "grpcio", "py-consul", "consul", "etcd", "prometheus"} <= names
    assert "everything the lab needs" in report._repr_html_()


def test_table_renders_text_and_escaped_html():
    table = Table([{"a": "<b>", "b": 1.23456}])
    assert "&lt;b&gt;" in table._repr_html_()
    assert repr(table).splitlines() == ["a    b", "<b>  1.235"]


def test_consul_health_reads_waits_and_times(consul_http, server):
    registration = ServiceRegistration(
        ServiceInstance(id=server.instance_id, name="helpers", host="127.0.0.1", port=server.port),
        checks=[CheckSpec("grpc"), CheckSpec("ttl", ttl="2s", deregister_critical_after="1m")],
    )
    grpc_id, ttl_id = registration.check_ids()
    registrar = ConsulRegistrar(registration, consul_http=consul_http).start()
    with ConsulHealth(consul_http) as health:
        try:
            assert registrar.wait_registered(5)
            assert health.wait_all(server.instance_id, "passing", timeout=10) < 10
            assert health.wait_listed("helpers", server.instance_id, timeout=5) < 5
            assert health.instances("helpers", passing=True) == [server.instance_id]
            assert health.definition(ttl_id)["DeregisterCriticalServiceAfter"] == "1m0s"
            assert [row["check"] for row in health.table(server.instance_id)] == [grpc_id, ttl_id]

            flipped = time.monotonic()
            server.set_serving(False)
            assert health.wait_for(grpc_id, "critical", timeout=10, since=flipped) < 5
            assert health.service_status(server.instance_id) == "critical"
            assert health.wait_listed("helpers", server.instance_id, listed=False, timeout=5) < 5
            assert health.instances("helpers", passing=True) == []
            with pytest.raises(TimeoutError, match=f"{grpc_id} to be passing, but check {grpc_id} is 'critical'"):
                health.wait_for(grpc_id, "passing", timeout=0.3)
            with pytest.raises(ValueError, match="status: 'down'"):
                health.wait_for(grpc_id, "down")
        finally:
            registrar.stop()
        assert health.wait_gone(server.instance_id, timeout=5) < 5
        assert health.status(grpc_id) is None


def test_reflection_lists_the_four_call_modes(server):
    assert "lab.user.v1.UserService" in reflection.list_services(server.address)
    modes = {row["method"]: row["mode"] for row in reflection.describe_methods(server.address)}
    assert modes["GetUser"] == "unary" and modes["ListUsers"] == "server streaming"
    assert modes["ImportUsers"] == "client streaming" and modes["Chat"] == "bidirectional"


def test_stream_collector_chat_and_status_table(server, stub):
    since = AdminClient(server.http_address).state()["sequence"]
    watch = calls.StreamCollector(stub.WatchUsers(user_pb2.WatchUsersRequest(since_sequence=since)))
    stub.CreateUser(user_pb2.CreateUserRequest(name="Ada", email="ada@example.com"))
    assert [e.user.name for e in watch.wait_for(1)] == ["Ada"]
    watch.stop()
    assert watch.error is None
    with pytest.raises(TimeoutError, match="expected 2 messages, got 1"):
        watch.wait_for(2, timeout=0.1)

    transcript = calls.chat(stub, ["a", "b"])
    assert [row["direction"] for row in transcript] == ["sent", "received", "sent", "received"]

    table = calls.status_table({"missing": lambda: stub.GetUser(user_pb2.GetUserRequest(id="u-x"))})
    assert table[0]["code"] == "NOT_FOUND" and "u-x" in table[0]["details"]


def test_every_solution_satisfies_its_checker(stub):
    # 00, 02, 03 and 04 run against a real lab in tests/lessons/test_exercises_00_04.py.
    assert exercises.check("01-import", lesson_01.import_three(stub))


def test_checkers_explain_a_wrong_answer():
    assert not exercises.check("01-import", None)
    with pytest.raises(KeyError, match="no exercise named 'nope'"):
        exercises.solution("nope")


def test_metric_origins_says_which_grpc_metrics_follow_go_grpc_prometheus_and_which_are_the_labs_own():
    import time

    import grpc
    from prometheus_client import generate_latest

    from lab_services.lessons.scrapes import metric_origins
    from lab_services.service import UserServer, user_pb2, user_pb2_grpc

    server = UserServer(name="origins").start()
    try:
        with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError):
            user_pb2_grpc.UserServiceStub(channel).GetUser(user_pb2.GetUserRequest(id="u-404"), timeout=2)
        time.sleep(0.5)  # the counters are updated once the call has finished on the server
        origins = {r["metric"]: r["origin"] for r in metric_origins(generate_latest(server.metrics.registry).decode())}
    finally:
        server.stop(0)
    assert origins == {
        "grpc_server_handled_total": "go-grpc-prometheus (without its label grpc_type)",
        "grpc_server_handling_seconds": "go-grpc-prometheus (without its label grpc_type)",
        "grpc_server_in_flight": "the lab's own (go-grpc-prometheus has no such metric)",
    }


def test_stderr_progress_rewrites_one_line_when_on_and_writes_nothing_under_json_or_off_a_terminal():
    import io

    from lab_services.core.progress import StderrProgress

    stream = io.StringIO()  # not a terminal
    StderrProgress.for_terminal(json_output=False, stream=stream)(0, 2, "first")
    StderrProgress.for_terminal(json_output=True, force=True, stream=stream)(0, 2, "first")
    assert stream.getvalue() == ""
    progress = StderrProgress.for_terminal(json_output=False, force=True, stream=stream)
    progress(0, 2, "a long first step")
    progress(1, 2, "second")
    progress(2, 2, "done")
    progress.done()
    assert stream.getvalue() == "\r[0/2] a long first step\r[1/2] second           \r[2/2] done  \n"


def test_progress_bar_shows_how_far_and_the_current_step():
    from lab_services.lessons.progress import ProgressBar

    bar = ProgressBar("drills", show=False)
    bar(1, 4, "service-kill: run 2 of 4")
    assert (bar.bar.value, bar.bar.max, bar.label.value) == (1, 4, "1/4 · service-kill: run 2 of 4")
    assert bar.steps == ["service-kill: run 2 of 4"]
