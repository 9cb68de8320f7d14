"""Streams on real servers: a watch resumed across kill -9 with no gap or duplicate, backpressure, deadlines."""

from __future__ import annotations

import time

import pytest

from lab_services.discovery import ConsulWatcher
from lab_services.lessons.streaming import FanOutWriter, ResumableWatch, backpressure_experiment, stream_outcome
from lab_services.service import UserServer

pytestmark = pytest.mark.timeout(120)


def test_watch_resumes_after_kill_9_without_gap_or_duplicate(three_in_consul, three_in_consul_watcher):
    writer = FanOutWriter(three_in_consul_watcher)
    start = writer.start_sequence()  # the instances started together and have taken the same changes
    # A short avoid_for, so the restarted instance is tried (and refuses) before the third one is chosen.
    with ResumableWatch(three_in_consul_watcher, since_sequence=start, avoid_for=0.5) as watch:
        first = watch.wait_serving(5)
        writer.create_many(30)
        assert watch.wait_for_sequence(writer.sequence, 5)
        three_in_consul.kill(first)
        writer.create_many(30, interval=0.005)
        assert watch.wait_for_sequence(writer.sequence, 10), watch.failures

        # The killed instance comes back empty: it cannot resume our sequence and must be passed over.
        three_in_consul.start(first)
        assert three_in_consul_watcher.wait_for(lambda xs: first in [i.id for i in xs], 15)
        time.sleep(0.6)  # past avoid_for, so the watch may pick it again
        second = watch.current
        three_in_consul.kill(second)
        writer.create_many(30, interval=0.005)
        assert watch.wait_for_sequence(writer.sequence, 10), watch.failures
        result = watch.check(first=start + 1, last=writer.sequence)
    three_in_consul.start(second)
    writer.close()
    assert result["gaps"] == [] and result["duplicates"] == [], result
    assert result["events"] == 90
    assert len(result["instances"]) == 3 and result["instances"][0] == first and result["instances"][1] == second
    assert any("OUT_OF_RANGE" in why for _, instance, why in watch.failures if instance == first), watch.failures
    assert watch.switches[1].since > start


def test_watch_gives_up_when_no_instance_exists(three_in_consul):
    with ConsulWatcher("nobody", three_in_consul.status().consul.http, wait="1s") as empty:
        empty.wait_ready(5)
        watch = ResumableWatch(empty, give_up_after=0.5).start()
        assert not watch.wait_for_sequence(1, 5)
        watch.stop()
    assert "no instance of 'nobody'" in watch.error


@pytest.fixture(scope="module")
def server():
    s = UserServer(name="stream-test").start()
    for n in range(20):
        s.store.create(f"user {n}", f"user{n}@example.org")
    yield s
    s.stop(0)


def test_slow_reader_stalls_the_sender(server):
    result = backpressure_experiment(server.address, seconds=2.5, read_every=0.02, fast_for=0.5)
    assert result["sender_stalled"], {k: v for k, v in result.items() if k != "samples"}
    # The sender is ahead by what the buffers hold, and that stays bounded once the reader slows down.
    assert 0 < result["ahead_at_end"] <= result["max_ahead"] < 2000
    assert result["fast_sender_rate"] > 5 * result["sender_rate"], result


def test_stream_deadline_covers_the_whole_stream(server):
    ended = stream_outcome(server.address, timeout=0.35, interval_ms=100)
    assert ended["code"] == "DEADLINE_EXCEEDED" and 2 <= ended["received"] <= 4 and ended["seconds"] < 1
    complete = stream_outcome(server.address, timeout=5, interval_ms=5)
    assert complete["code"] == "OK" and complete["received"] == 20


def test_cancelled_stream_ends_on_both_sides(server):
    ended = stream_outcome(server.address, cancel_after=0.25, interval_ms=100)
    assert ended["code"] == "CANCELLED" and ended["seconds"] < 1
