"""Tracing across real gRPC services on loopback, exported over real OTLP to the lab's receiver (lesson 13); the
gateway finds the user instances at fixed addresses or through a real Consul, and traces the same either way."""

from __future__ import annotations

import statistics

import matplotlib.pyplot as plt
import pytest
from notebook_cells import unanswered

from lab_services.core.wait import wait_until
from lab_services.lessons import exercises
from lab_services.lessons.exercises import lesson_13, lesson_13_attribute
from lab_services.lessons.tracing_lab import (
    TracedSystem,
    deadline_trace,
    latency_by_peer,
    plot_waterfall,
    retry_trace,
    slow_mystery,
    span_table,
)
from lab_services.tracing import tracer_provider
from lab_services.tracing.gateway import Gateway


@pytest.fixture(scope="module", params=["fixed", "consul"])
def system(request):
    consul_http = [request.getfixturevalue("consul_node").http] if request.param == "consul" else None
    with TracedSystem(consul_http=consul_http) as traced:
        yield traced


def test_through_consul_the_gateway_follows_the_registry(consul_node):
    with TracedSystem(consul_http=[consul_node.http]) as system:
        assert system.gateway.gateway.targets() == {u.instance_id: u.address for u in system.users}
        assert {i.id for i in system.watcher.instances()} == {f"{system.service}-1", f"{system.service}-2"}
        # user-1 leaves the registry (deregistered): the gateway stops sending it attempts, with no restart.
        system.registrars[0].stop()
        wait_until(lambda: list(system.gateway.gateway.targets()) == ["user-2"], 15, "the gateway to drop user-1")
        spans = [s for _ in range(4) for s in system.trace(system.call()[0], 5)]
        assert {s.attributes["net.peer"] for s in spans if s.service == "gateway" and s.kind == "client"} == {"user-2"}
        # Nobody left: the call fails UNAVAILABLE at once, and the gateway's span says why.
        system.registrars[1].stop()
        wait_until(lambda: not system.gateway.gateway.targets(), 15, "the gateway to find no instance")
        trace_id, code = system.call()
        assert code == "UNAVAILABLE"
        gateway = next(s for s in system.trace(trace_id, 3) if s.service == "gateway" and s.kind == "server")
        assert [name for name, _, _ in gateway.events] == ["no instance"]
    assert consul_node.get(f"/v1/catalog/service/{system.service}") == [], "stopping deregisters every instance"


def test_one_call_is_one_trace_across_three_processes_roles(system):
    trace_id, code = system.call()
    spans = system.trace(trace_id, 5)
    assert code == "OK" and {s.trace_id for s in spans} == {trace_id}
    by_role = {(s.service, s.kind): s for s in spans}
    assert set(by_role) == {
        ("client", "internal"),
        ("client", "client"),
        ("gateway", "server"),
        ("gateway", "client"),
        ("user", "server"),
    }
    # Each hop's server span is the child of its caller's client span, linked only by metadata on the wire.
    assert by_role[("gateway", "server")].parent_id == by_role[("client", "client")].span_id
    assert by_role[("user", "server")].parent_id == by_role[("gateway", "client")].span_id
    received = by_role[("user", "server")].attributes["traceparent.received"]
    version, carried_trace, parent, flags = received.split("-")
    assert (version, carried_trace, parent) == ("00", trace_id, by_role[("gateway", "client")].span_id)
    assert int(flags, 16) & 1, f"the sampled flag should be set in {received}"
    assert span_table(spans).rows[0]["span"].strip() == "show profile"


def test_every_grpc_span_follows_opentelemetrys_rpc_conventions(system):
    """Named `package.Service/Method`, with rpc.system, rpc.service, rpc.method and the integer status code."""
    trace_id, _ = system.call()
    calls = [s for s in system.trace(trace_id, 5) if s.kind in ("client", "server")]
    assert len(calls) == 4
    for span in calls:
        service, method = span.attributes["rpc.service"], span.attributes["rpc.method"]
        assert span.name == f"{service}/{method}" and "/" not in method and "." in service
        assert span.attributes["rpc.system"] == "grpc"
        assert span.attributes["rpc.grpc.status_code"] == 0 and span.grpc_status == "OK", span


def test_a_retry_shows_as_a_failed_attempt_span_and_a_second_one(system):
    code, spans = retry_trace(system, failing="user-1")
    attempts = [s for s in spans if s.service == "gateway" and s.kind == "client"]
    assert code == "OK"
    assert [(s.attributes["net.peer"], s.grpc_status) for s in attempts] == [
        ("user-1", "UNAVAILABLE"),
        ("user-2", "OK"),
    ]
    assert attempts[0].error and not attempts[1].error
    gateway = next(s for s in spans if s.service == "gateway" and s.kind == "server")
    assert [name for name, _, _ in gateway.events] == ["attempt", "attempt failed", "attempt"]


def test_the_deadline_travels_and_is_exceeded(system):
    code, spans = deadline_trace(system, slow="user-2", latency_ms=400, deadline=0.3)
    assert code == "DEADLINE_EXCEEDED"
    attempt = next(s for s in spans if s.service == "gateway" and s.kind == "client")
    assert (
        attempt.attributes["net.peer"] == "user-2"
        and attempt.attributes["rpc.timeout_ms"] < system.per_try_timeout * 1000
    )
    assert attempt.grpc_status == "DEADLINE_EXCEEDED" and attempt.attributes["rpc.grpc.status_code"] == 4


def test_the_slow_instance_exercise(system):
    mystery = slow_mystery(system)
    assert mystery.slow in ("user-1", "user-2") and "slow=" not in repr(mystery), "the lab keeps the answer to itself"
    right = exercises.check("13-slowest", lesson_13.slowest, system=system, mystery=mystery)
    assert right and right.message.startswith("right 3 times out of 3: in the lesson's spans"), right.message
    assert {r["peer"] for r in latency_by_peer(system.receiver.spans()).rows} == {"user-1", "user-2"}


def _by_peer(spans, service, kind, key):
    ms = {}
    for s in spans:
        if s.service == service and s.kind == kind:
            ms.setdefault(s.attributes[key], []).append(s.ms)
    return {peer: statistics.median(v) for peer, v in ms.items()}


def _fastest_by_caller(spans):
    by = _by_peer(spans, "gateway", "client", "net.peer")
    return min(by, key=by.get)


def _slowest_by_own_spans(spans):
    by = _by_peer(spans, "user", "server", "lab.instance")
    return max(by, key=by.get)


@pytest.mark.parametrize(
    "answer,says",
    [
        (_fastest_by_caller, "the gateway waited for least (its CLIENT spans' median): the fastest"),
        # The slow instance waits before its handler; the others work inside theirs: their own spans mislead.
        (_slowest_by_own_spans, "follow the user instances' own SERVER spans, which miss the delay"),
        (lambda spans: "user-1", "ou named 'user-1' every time, while the slow instance changed"),
        (lambda spans: "user-9", "return one of ['user-1', 'user-2'], got 'user-9'"),
    ],
)
def test_a_wrong_slowest_answer_is_told_which_mistake_it_made(system, answer, says):
    verdict = exercises.check("13-slowest", answer, system=system)
    assert not verdict and says in verdict.message, verdict.message


def test_the_slow_instance_exercise_left_blank(system):
    mystery = slow_mystery(system)
    exercise, args, kwargs = unanswered("13", "13-slowest", system=system, mystery=mystery)  # the notebook's own
    assert exercises.check(exercise, *args, **kwargs).message.startswith("return one of ['user-1', 'user-2'], got None")
    assert "pass a function" in exercises.check("13-slowest", "user-1", system=system).message


def test_the_attribute_exercise(system):
    right = exercises.check("13-attribute", *lesson_13_attribute.user_id_attribute(), system=system)
    assert right and f"app.user.id={system.user_id}" in right.message, right.message
    # The hook is removed afterwards: later calls carry only the lab's own attributes.
    user = next(s for s in system.trace(system.call()[0], 5) if s.service == "user")
    assert "app.user.id" not in user.attributes
    plt.close("all")


def _draw(spans):
    return plot_waterfall(spans)


@pytest.mark.parametrize(
    "annotate,show,says",
    [
        (lambda span, request: None, _draw, "the user's SERVER span has no attribute of yours"),
        (
            lambda span, request: span.set_attribute("user_id", request.id),
            _draw,
            "the user's SERVER span carries {'user_id': ",
        ),
        (
            lambda span, request: span.set_attribute("app.user.id", "u-404"),
            _draw,
            "app.user.id is 'u-404', but the call asked for user ",
        ),
        (lambda span, request: 1 / 0, _draw, "annotate(span, request) raised ZeroDivisionError: division by zero"),
        (
            lambda span, request: span.set_attribute("app.user.id", request.id),
            _draw,
            "no row of the waterfall shows it",
        ),
        (lambda span, request: span.set_attribute("app.user.id", request.id), print, "show(spans) returned None"),
    ],
)
def test_a_wrong_attribute_answer_is_told_what_is_missing(system, annotate, show, says):
    verdict = exercises.check("13-attribute", annotate, show, system=system)
    plt.close("all")
    assert not verdict and says in verdict.message, verdict.message


def test_the_attribute_exercise_left_blank(system):
    exercise, args, kwargs = unanswered("13", "13-attribute", system=system)
    verdict = exercises.check(exercise, *args, **kwargs)
    assert not verdict and verdict.message.startswith("the user's SERVER span has no attribute of yours"), verdict


def test_bad_settings_are_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"endpoint: '10\.0\.0\.1' is not a lab address"):
        tracer_provider("x", "10.0.0.1:4317")
    with pytest.raises(ValueError, match="service: a tracer provider needs a service name"):
        tracer_provider("", "127.0.0.1:4317")
    with pytest.raises(ValueError, match="attempts: 9; use 1 to 5"):
        Gateway({"user-1": "127.0.0.1:1"}, tracer_provider("g", "127.0.0.1:4317"), attempts=9)
    with pytest.raises(ValueError, match="instances: 0; use 1 to 5"):
        TracedSystem(instances=0)
    with pytest.raises(ValueError, match=r"consul_http: '127\.0\.0\.1:8500'; give a list"):
        TracedSystem(consul_http="127.0.0.1:8500")
