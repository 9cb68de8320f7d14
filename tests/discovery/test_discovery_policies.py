"""Balancing policies on made-up instances: what each one picks, and bad input refused or tolerated."""

from __future__ import annotations

import collections
import logging
import random

import pytest

from lab_services.discovery import CanarySplit, InstanceStats, ServiceInstance, make_policy
from lab_services.discovery.policies import POLICIES, Weighted


def stats(*specs: tuple[str, dict, int]) -> list[InstanceStats]:
    return [
        InstanceStats(ServiceInstance(i, "user", "127.0.0.1", 5000 + n, meta=meta), in_flight=busy)
        for n, (i, meta, busy) in enumerate(specs)
    ]


def picks(policy, candidates, n):
    return collections.Counter(policy.pick(candidates).id for _ in range(n))


def test_round_robin_rotates():
    policy = make_policy("round_robin")
    candidates = stats(("a", {}, 0), ("b", {}, 0), ("c", {}, 0))
    assert [policy.pick(candidates).id for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]


def test_weighted_is_smooth_and_exact():
    policy = make_policy("weighted")
    candidates = stats(("a", {"weight": "3"}, 0), ("b", {"weight": "1"}, 0))
    assert [policy.pick(candidates).id for _ in range(8)] == ["a", "a", "b", "a"] * 2


def test_invalid_weight_counts_as_one_and_warns_once(caplog):
    policy = Weighted()
    candidates = stats(("a", {"weight": "heavy"}, 0), ("b", {"weight": "-2"}, 0), ("c", {}, 0))
    with caplog.at_level(logging.WARNING, logger="lab_services.discovery.policies"):
        counts = picks(policy, candidates, 300)
    assert counts == {"a": 100, "b": 100, "c": 100}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings
    assert "instance a has meta weight='heavy', not a positive number; using weight 1" in warnings[0]


def test_least_outstanding_prefers_the_idle_instance():
    policy = make_policy("least_outstanding")
    assert picks(policy, stats(("a", {}, 4), ("b", {}, 0), ("c", {}, 2)), 50) == {"b": 50}
    ties = picks(policy, stats(("a", {}, 1), ("b", {}, 1)), 400)
    assert 140 < ties["a"] < 260


def test_p2c_never_picks_the_busiest_of_three():
    policy = POLICIES["p2c"](rng=random.Random(1))
    counts = picks(policy, stats(("a", {}, 9), ("b", {}, 0), ("c", {}, 1)), 600)
    assert counts["a"] == 0 and counts["b"] > counts["c"] > 0
    assert policy.pick(stats(("only", {}, 5))).id == "only"


def test_random_spreads():
    counts = picks(make_policy("random"), stats(("a", {}, 0), ("b", {}, 0), ("c", {}, 0)), 900)
    assert all(220 < counts[i] < 380 for i in "abc"), counts


@pytest.mark.parametrize("bad", ["x", "", None, 3])
def test_unknown_policy_names_the_choices(bad):
    with pytest.raises(ValueError) as info:
        make_policy(bad)
    assert str(info.value) == (
        f"invalid argument: policy: {bad!r}; use one of round_robin, random, weighted, least_outstanding, p2c"
    )


def test_a_policy_object_passes_through():
    policy = Weighted(key="capacity")
    assert make_policy(policy) is policy


def test_canary_split_sends_its_share_to_the_canary():
    split = CanarySplit(canary_share=0.25, rng=random.Random(7))
    candidates = stats(("a", {"version": "v1"}, 0), ("b", {"version": "v1"}, 0), ("c", {"version": "v2"}, 0))
    counts = picks(split, candidates, 2000)
    assert 400 < counts["c"] < 600 and abs(counts["a"] - counts["b"]) <= 1, counts
    assert picks(split, candidates[:2], 10) == {"a": 5, "b": 5}, "no canary: the stable group takes everything"
    assert picks(split, stats(("x", {}, 0)), 3) == {"x": 3}, "nothing matches: every candidate serves"


@pytest.mark.parametrize("share", [-0.1, 1.5, "10%", True])
def test_canary_share_must_be_a_fraction(share):
    with pytest.raises(ValueError, match="invalid argument: canary_share"):
        CanarySplit(canary_share=share)
