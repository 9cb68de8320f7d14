"""Lesson 03's policy comparison on a real lab: one slowed instance, one heavier weight, several calls in flight."""

from __future__ import annotations

import pytest
from labs import local_lab

from lab_services.discovery import ConsulWatcher
from lab_services.lessons.policy_race import policy_split
from lab_services.service import AdminClient


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("race"), consul_servers=1, etcd_members=1, services=2, prometheus=False
    ) as lab:
        yield lab


def test_load_aware_policies_avoid_the_slow_instance_and_weighted_follows_the_weights(cluster):
    slow = cluster.status().services[0]
    heavy = cluster.add_service(meta={"weight": "4"})["name"]
    AdminClient(slow.admin).set_faults(latency_ms=40)
    lines = []
    try:
        with ConsulWatcher("user", cluster.status().consul.http, wait="5s") as watcher:
            assert watcher.wait_for(lambda xs: len(xs) == 3, 10)
            table = policy_split(watcher, calls=240, in_flight=8, say=lines.append)
    finally:
        AdminClient(slow.admin).set_faults(latency_ms=0)
        cluster.reset()
    share = {row["policy"]: row for row in table.rows}
    assert len(lines) == 4 and lines[0].startswith("[1/4] round_robin: 240 calls")
    assert all(row["failed"] == 0 for row in table.rows), table.rows
    # Round robin ignores both the latency and the weights: a third each, within a call or two.
    assert all(abs(share["round_robin"][i] - 100 / 3) < 3 for i in ("user-1", "user-2", heavy)), share["round_robin"]
    # Weighted follows 1:1:4 whatever the latency.
    assert share["weighted"][heavy] > 55, share["weighted"]
    # The slow instance holds its calls longer, so the load-aware policies send it well under its third (33 %); p2c
    # still picks it whenever both its random candidates are busy, which a loaded machine makes more common.
    for policy in ("least_outstanding", "p2c"):
        assert share[policy][slow.id] < 25, (policy, share[policy])
    with pytest.raises(ValueError, match=r"policies: \['fastest'\] unknown"):
        policy_split(watcher, policies=("fastest",))
