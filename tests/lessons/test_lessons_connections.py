"""Lesson 11's experiments against real processes: balancing policies, dns:/// re-resolution, keepalive, GOAWAY,
idle."""

from __future__ import annotations

import pytest
from labs import local_lab

from lab_services.lessons import connections as cn
from lab_services.lessons import exercises
from lab_services.lessons.exercises import lesson_11


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("connections"),
        consul_servers=1,
        etcd_members=0,
        services=3,
        registry="consul",
        prometheus=False,
        instance_addresses="distinct",
    ) as lab:
        yield lab


def test_pick_first_sticks_and_round_robin_spreads(cluster):
    addresses = [s.address for s in cluster.status().services]
    with cn.lb_channel(addresses, "pick_first") as channel:
        assert list(cn.served_counts(channel, 12)) == ["user-1"], "pick_first uses the first address that connects"
    with cn.lb_channel(addresses, "round_robin") as channel:
        assert cn.served_counts(channel, 12) == {"user-1": 4, "user-2": 4, "user-3": 4}
    with pytest.raises(ValueError, match="policy"):
        cn.lb_channel(addresses, "weighted")


def test_dns_target_sees_a_new_instance_only_when_connections_age_out(cluster):
    plain = cn.time_to_new_instance(cluster, None, window=4)
    assert plain["first call to it after s"] is None and plain["failed calls"] == 0 and len(plain["before"]) == 2
    aged = cn.time_to_new_instance(cluster, 1500, window=8)
    assert aged["first call to it after s"] is not None and aged["failed calls"] == 0


def test_keepalive_needs_a_ping_timeout_to_notice_a_paused_instance(cluster):
    without = cn.detect_pause(cluster, "user-2", cn.keepalive_options(1000), window=4)
    assert without["stream status"] == "still open"
    with_timeout = cn.detect_pause(cluster, "user-2", cn.keepalive_options(1000, ping_timeout_ms=1000), window=6)
    assert with_timeout["stream status"] == "UNAVAILABLE" and with_timeout["left READY after s"] is not None
    assert {s.state for s in cluster.status().services} == {"running"}


def test_too_many_pings_gets_a_goaway_and_an_idle_channel_goes_idle(cluster):
    address = cluster.status().services[2].address
    assert cn.too_many_pings(address, 1000, window=7)["GOAWAY after s"] is not None
    assert [s for _, s in cn.idle_states(address, 1000, wait=2.5)][-1] == "IDLE"


def test_pings_faster_than_five_minutes_end_a_quiet_healthy_stream_with_the_servers_defaults(cluster):
    """With a call open but no data, C-core's limit is min_ping_interval_without_data (5 minutes): pinging every
    second ends the stream UNAVAILABLE `Too many pings` long before its deadline."""
    quiet = cn.quiet_stream_pings(cluster.status().services[2].address, 1000, window=12)
    assert (quiet["code"], quiet["details"]) == ("UNAVAILABLE", "Too many pings"), quiet
    assert quiet["stream ended after s"] < 12


def test_the_exercise_solution_passes_and_wrong_answers_are_told_why(cluster):
    client, server = lesson_11.hung_instance_options()
    right = exercises.check(lesson_11.NAME, client, server, cluster=cluster)
    assert right and right.message.startswith("a quiet stream stayed open 8 s with pings every 500 ms and no GOAWAY"), (
        right.message
    )
    # The old solution: the right client options against a server left at its defaults. The quiet, healthy stream is
    # thrown off with too_many_pings, and the verdict says which server option to set.
    defaults = exercises.check(lesson_11.NAME, client, [], cluster=cluster)
    assert not defaults and "the server ended your healthy, quiet stream before anything was paused: UNAVAILABLE" in (
        defaults.message
    ), defaults.message
    assert "the server accepts a ping only every 300000 ms while no data flows (the default" in defaults.message
    # A server option raised, but not below the client's pings.
    too_strict = exercises.check(
        lesson_11.NAME, client, [("grpc.http2.min_ping_interval_without_data_ms", 5000)], cluster=cluster
    )
    assert not too_strict and "only every 5000 ms while no data flows (your" in too_strict.message, too_strict.message
    # Pings the server allows, but no ping timeout: a paused instance is never noticed.
    slow = exercises.check(lesson_11.NAME, [("grpc.keepalive_time_ms", 1000)], server, cluster=cluster)
    assert not slow and "still open" in slow.message and "how long may an unanswered ping wait" in slow.message
    assert exercises.check(lesson_11.NAME, None, [], cluster=cluster).message.startswith("the client options should")
    assert exercises.check(lesson_11.NAME, [], "x", cluster=cluster).message.startswith("the server options should")
    assert {s.state for s in cluster.status().services} == {"running"}, "the checker leaves the lab's instances alone"


def test_a_channel_per_call_opens_a_connection_per_call(cluster):
    reused, per_call = cn.reuse_vs_per_call(cluster.status().services[0].address, calls=10)
    assert reused["connections opened"] == 1 and per_call["connections opened"] == 10
    assert reused["median ms"] > 0 and per_call["median ms"] > 0


def test_a_kill_through_dns_and_through_the_native_channel(cluster):
    rows = cn.kill_side_by_side(cluster, "user-3", window=3)
    assert [r["channel"] for r in rows] == ["dns:/// round_robin", "NativeChannel (watcher -> ipv4:)"]
    for row in rows:
        assert set(row["served by the others"]) == {"user-1", "user-2"} and row["served by user-3"] == 0, row
        assert row["failed"] < row["calls after the kill"] / 2, f"the channel kept failing after the kill: {row}"
    assert {s.state for s in cluster.status().services} == {"running"}, "the victim is started again"
