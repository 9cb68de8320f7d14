"""The TrafficSplit widget driven with button.click() and .value = against a small real lab."""

from __future__ import annotations

import time

import pytest
from labs import local_lab

from lab_services.discovery import CanarySplit, ConsulWatcher, PickerChannel, Random
from lab_services.lessons.widgets import TrafficSplit

IDS = ["user-1", "user-2", "user-3"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("split-lab"), consul_servers=1, etcd_members=1, services=3, prometheus=False
    ) as lab:
        yield lab


@pytest.fixture
def watcher(cluster):
    w = ConsulWatcher("user", cluster.status().consul.http, wait="5s").start()
    assert w.wait_for(lambda xs: [i.id for i in xs] == IDS, 15), [i.id for i in w.instances()]
    yield w
    w.stop()


@pytest.fixture
def split(cluster, watcher):
    channel = PickerChannel(watcher)
    widget = TrafficSplit(channel, calls_per_second=100, cluster=cluster)
    yield widget
    widget.close()
    channel.close()


def drive(split: TrafficSplit, n: int) -> dict[str, int]:
    """n calls on this thread, counted afresh: deterministic and quicker than the background driver."""
    split.reset()
    for _ in range(n):
        split.call_once()
    return split.split()


def test_round_robin_gives_every_instance_a_fair_share_in_the_background(split):
    split.start(duration=1.5)
    assert split.running
    assert split.wait(5), "the driver should stop by itself after its duration"
    counts = split.split()
    assert sorted(counts) == IDS, counts
    assert max(counts.values()) - min(counts.values()) <= 1, f"round robin should rotate evenly, saw {counts}"
    assert 100 <= split.total <= 200, f"expected about 150 calls at 100 calls/s for 1.5 s, saw {split.total}"
    assert all(i in split.bars.value for i in IDS) and "stopped" in split.summary.value


def test_policy_dropdown_rebuilds_the_channel_and_the_slider_follows_canary(split):
    given = split.channel
    assert split.policy_dropdown.value == "round_robin" and split.canary_slider.disabled
    split.policy_dropdown.value = "random"
    assert split.channel is not given and isinstance(split.channel.policy, Random)
    assert split.channel.watcher is given.watcher
    assert sorted(drive(split, 60)) == IDS
    split.policy_dropdown.value = "canary"
    assert isinstance(split.channel.policy, CanarySplit) and not split.canary_slider.disabled
    split.canary_slider.value = 0.3
    assert split.channel.policy.canary_share == pytest.approx(0.3)
    assert not given._closed, "the channel the caller passed in stays open; only built ones are closed"


def test_add_a_v2_canary_route_a_share_to_it_then_drain_it(cluster, watcher, split):
    split.add_version.value = "v2"
    split.add_button.click()
    added = next(s for s in cluster.status().services if s.version == "v2" and s.state == "running").id
    assert f"{added} (v2, running)" in [label for label, _ in split.instance_dropdown.options]
    assert watcher.wait_for(lambda xs: added in [i.id for i in xs], 10)

    split.policy_dropdown.value = "canary"
    split.canary_slider.value = 0.25
    counts = drive(split, 400)
    share = counts.get(added, 0) / 400
    assert 0.15 <= share <= 0.35, f"expected about 25% of calls on the canary {added}, saw {counts}"

    split.instance_dropdown.value = added
    split.drain_button.click()
    assert "draining" in split.action.value and cluster.state_of(added) == "stopped"
    assert watcher.wait_for(lambda xs: added not in [i.id for i in xs], 10)
    counts = drive(split, 60)
    assert added not in counts and "(failed)" not in counts, (
        f"a drained instance gets nothing, and no call fails: {counts}"
    )


def test_kill_button_moves_traffic_away_without_failures_and_start_brings_it_back(cluster, watcher, split):
    split.start(duration=20)
    split.instance_dropdown.value = "user-3"
    killed_at = time.monotonic()
    split.kill_button.click()
    assert watcher.wait_for(lambda xs: "user-3" not in [i.id for i in xs], 10), "Consul should drop a killed instance"
    print(f"user-3 left discovery {time.monotonic() - killed_at:.2f} s after the kill")
    split.reset()
    time.sleep(1.0)
    after = split.split()
    assert "user-3" not in after and sorted(after) == ["user-1", "user-2"], after
    split.start_button.click()
    assert cluster.state_of("user-3") == "running"
    assert watcher.wait_for(lambda xs: "user-3" in [i.id for i in xs], 10)
    split.stop()
    assert split.failures == [], f"retries elsewhere should hide the kill from callers: {split.failures[:3]}"
    # The first call after the restart may still meet gRPC's reconnect backoff and eject the instance for
    # `eject_for` seconds; after that it serves again.
    deadline = time.monotonic() + split.channel.eject_for + 5
    while "user-3" not in drive(split, 30) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "user-3" in split.split(), f"the restarted instance should serve again: {split.channel.stats()}"


def test_without_a_cluster_the_buttons_are_disabled(watcher):
    with PickerChannel(watcher) as channel:
        split = TrafficSplit(channel)
        assert split.kill_button.disabled and split.add_button.disabled
        assert [value for _, value in split.instance_dropdown.options] == IDS
        with pytest.raises(RuntimeError, match="pass cluster="):
            split.kill("user-1")
        split.close()


def test_refuses_a_channel_that_is_not_a_picker_channel():
    with pytest.raises(TypeError, match="PickerChannel"):
        TrafficSplit(object())
