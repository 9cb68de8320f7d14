"""The common wrong answers to lessons 01, 02 and 08, judged on real servers: each verdict says what is wrong."""

from __future__ import annotations

import threading
import time
import uuid

import grpc
import pytest
from labs import local_lab

from lab_services.lessons import exercises
from lab_services.lessons.exercises import lesson_02
from lab_services.lessons.scrapes import wait_for_rates
from lab_services.service import UserServer, user_pb2, user_pb2_grpc


@pytest.fixture(scope="module")
def stub():
    server = UserServer(name="messages").start()
    with grpc.insecure_channel(server.address) as channel:
        yield user_pb2_grpc.UserServiceStub(channel)
    server.stop(0)


def _import(stub, *records: tuple[str, str]):
    return stub.ImportUsers(iter([user_pb2.CreateUserRequest(name=n, email=e) for n, e in records]))


@pytest.mark.parametrize(
    "records,says",
    [
        (
            [("Ada", "ada-{t}@example.com"), ("Bob", "bob-{t}@example.com"), ("Cy", "cy-{t}@example.com")],
            "3 imported and 0 rejected: none was invalid; give one record an empty name",
        ),
        (
            [("Ada", "ada-{t}@example.com"), ("", "x-{t}@example.com")],
            "1 imported and 1 rejected: the call carried 2 records; send exactly three",
        ),
        (
            [("Ada", "ada-{t}@example.com"), ("", "x-{t}@example.com"), ("Cy", "not an address")],
            "1 imported and 2 rejected: only one record should be invalid, but the server refused record 1: name",
        ),
    ],
)
def test_01_a_wrong_import_is_told_what_to_change(stub, records, says):
    tag = uuid.uuid4().hex[:8]
    summary = _import(stub, *((n, e.format(t=tag)) for n, e in records))
    verdict = exercises.check("01-import", summary)
    assert not verdict and verdict.message.startswith(says), verdict.message


def test_01_emails_of_an_earlier_run_are_named_as_the_cause(stub):
    tag = uuid.uuid4().hex[:8]
    first = [("Ada", f"ada-{tag}@example.com"), ("", f"x-{tag}@example.com"), ("Cy", f"cy-{tag}@example.com")]
    assert exercises.check("01-import", _import(stub, *first))
    again = exercises.check("01-import", _import(stub, *first))  # the same emails: the instance remembers them
    assert not again and "make every email new" in again.message, again.message


def test_02_a_heartbeat_that_leaves_a_thread_behind_is_named(consul_node):
    register, _ = lesson_02.my_ttl_registration()
    left_behind = threading.Event()

    def heartbeat(client, check_id, stop):
        # Returns when asked, but a thread it started keeps reporting passing for a while.
        def beat():
            until = time.monotonic() + 15
            while time.monotonic() < until and not left_behind.is_set():
                client.agent.check.ttl_pass(check_id)
                time.sleep(1)

        threading.Thread(target=beat, daemon=True).start()
        stop.wait()

    try:
        verdict = exercises.check("02-ttl", register, heartbeat, consul_http=consul_node.http)
    finally:
        left_behind.set()
    assert not verdict and "so something else still reports it passing" in verdict.message, verdict.message


@pytest.fixture(scope="module")
def prometheus_lab(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("promql"),
        consul_servers=1,
        etcd_members=0,
        services=1,
        prometheus=True,
        registry="consul",
    ) as lab:
        yield lab


def test_08_wrong_queries_are_told_what_is_wrong(prometheus_lab):
    status = prometheus_lab.status()
    url = status.prometheus.url
    empty = exercises.check("08-promql", 'rate(grpc_server_handled_total{grpc_method="CreateUser"}[30s])', url=url)
    assert not empty and empty.message.startswith("Prometheus has recorded no CreateUser calls"), empty.message
    with grpc.insecure_channel(status.services[0].address) as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        stop = threading.Event()

        def load():
            while not stop.is_set():
                email = f"promql-{uuid.uuid4().hex[:10]}@example.com"
                stub.CreateUser(user_pb2.CreateUserRequest(name="P", email=email), timeout=2)
                stop.wait(0.05)

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        try:
            wait_for_rates(url, instances=1, timeout=60)
            misspelt = exercises.check("08-promql", "rate(grpc_server_handle_total[30s])", url=url)
            increase = exercises.check(
                "08-promql",
                'sum by (instance) (increase(grpc_server_handled_total{job="lab-services",grpc_method="CreateUser"}'
                "[30s]))",
                url=url,
            )
        finally:
            stop.set()
            loader.join(5)
    assert not misspelt and misspelt.message.startswith("your query returned no series at all"), misspelt.message
    # increase() counts calls per window, 30 times the rate: the verdict names that mistake.
    assert not increase and "that is calls per 30s, not per second: take rate(" in increase.message, increase.message
