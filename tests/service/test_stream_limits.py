"""Streams never starve the user service: health and unary calls still answer; past the limit, RESOURCE_EXHAUSTED."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lab_services.bench import streams
from lab_services.lessons.streaming.starvation import OpenStreams, compare_server_kinds, health_check, unary_latencies
from lab_services.service import UserServer, user_pb2, user_pb2_grpc

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def limited() -> Iterator[UserServer]:
    server = UserServer(instance_id="limited", max_streams=20).start()
    yield server
    server.stop(0)


@pytest.mark.parametrize("kind", ["watch", "chat"])
def test_streams_past_the_limit_are_refused_and_health_still_answers(limited, kind):
    # A long wait for a first message: a refused stream must come back RESOURCE_EXHAUSTED, not hang until then.
    with OpenStreams(limited.address, 20, kind, establish_timeout=60) as held:
        assert (held.established, held.refused) == (20, {})
        with OpenStreams(limited.address, 5, kind, establish_timeout=60) as extra:
            assert (extra.established, extra.refused) == (0, {"RESOURCE_EXHAUSTED": 5})
        assert health_check(limited.address, timeout=10) == "SERVING"
        answered, failed = unary_latencies(limited.address, calls=5, timeout=10)
        assert (len(answered), failed) == (5, 0)
        with grpc.insecure_channel(limited.address) as channel:
            # The health service's own stream is never counted or refused.
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
        assert limited.state()["open_streams"] == 20


def test_the_refusal_names_the_instance_and_the_limit(limited):
    with (
        OpenStreams(limited.address, 20, "watch", establish_timeout=60),
        grpc.insecure_channel(limited.address) as channel,
    ):
        call = user_pb2_grpc.UserServiceStub(channel).WatchUsers(user_pb2.WatchUsersRequest(), timeout=60)
        with pytest.raises(grpc.RpcError) as refused:
            next(call)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "limited has 20 open streams, its limit (max_streams, --max-streams)" in refused.value.details()


def test_closed_streams_free_their_places(limited):
    with OpenStreams(limited.address, 20, "chat", establish_timeout=60):
        pass
    with OpenStreams(limited.address, 20, "watch", establish_timeout=60) as again:
        assert (again.established, again.refused) == (20, {})


def test_a_bad_limit_is_refused_with_its_name():
    with pytest.raises(ValueError, match="invalid argument: max_streams: 0; must be at least 1"):
        UserServer(max_streams=0)


@pytest.mark.parametrize("kind", ["watch", "chat"])
def test_lesson_05_comparison_shows_the_thread_pool_starving_and_asyncio_serving(kind):
    threads, aio = compare_server_kinds(streams=40, kind=kind, max_workers=8)
    assert threads["server"] == "threads" and threads["health_check"] == "DEADLINE_EXCEEDED"
    assert threads["unary_calls_answered"] == "0 of 5"
    if kind == "chat":  # each of the 8 workers answers one chat; a watch also needs a change, which starves too
        assert threads["streams_served"] == 8
    assert aio == {
        "server": "aio",
        "streams_requested": 40,
        "streams_served": 40,
        "health_check": "SERVING",
        "unary_calls_answered": "5 of 5",
    }


def test_bench_streams_against_a_lab_keeps_the_instance_passing_in_consul():
    result = streams.run(streams=200)
    assert result["open_streams"] == 200 and result["refused_streams"] == {}
    assert result["health"] == "SERVING" and result["passing_in_consul"] is True and result["health_ok"] is True
    assert result["unary_failures"] == 0 and result["p99_unary_seconds"] is not None


def test_lesson_05_comparison_shows_consul_marking_the_starved_thread_pool_critical(consul_node):
    threads, aio = compare_server_kinds(streams=20, kind="chat", max_workers=4, consul_http=consul_node.http)
    assert threads["consul_check"] == "critical", threads
    assert aio["consul_check"] == "passing", aio
