"""The discovery benchmarks run once each with tiny settings and report the documented keys; timings are not judged."""

from __future__ import annotations

import json

import psutil

from lab_services import cli
from lab_services.bench import discovery

COMMON = {"benchmark": str, "registry": str, "mode": str, "runs": int}


def assert_shape(result: dict, keys: dict) -> None:
    json.dumps(result)  # what --json prints
    for key, kind in {**COMMON, **keys}.items():
        assert isinstance(result[key], kind), (key, result[key])


def test_propagation_reports_seconds_from_spawn_to_first_call():
    result = discovery.propagation(registry="etcd", mode="picker", runs=1)
    assert_shape(
        result,
        {
            "median_seconds_start_to_first_call": float,
            "max_seconds_start_to_first_call": float,
            "median_seconds_start_to_listed": float,
            "median_seconds_listed_to_first_call": float,
            "target_seconds_start_to_first_call": float,
            "target_seconds_listed_to_first_call": float,
            "samples": list,
        },
    )
    assert 0 < result["median_seconds_listed_to_first_call"] < result["median_seconds_start_to_first_call"] < 15
    assert result["samples"][0]["instance"] == "user-4"
    assert "propagation through the picker channel on etcd" in discovery.describe(result)


def test_failover_kills_one_instance_and_reports_its_pid_dead():
    result = discovery.failover(registry="consul", mode="picker", runs=1, rate=200, before=0.5, after=1.5)
    assert_shape(
        result,
        {
            "seconds_to_no_traffic": float,
            "max_seconds_to_no_traffic": float,
            "failed_calls": int,
            "calls": int,
            "calls_per_second": float,
            "killed_pid": int,
            "killed_pid_dead": bool,
            "target_seconds": float,
            "samples": list,
        },
    )
    # The picker retries a call that met the dead instance on another one, so the caller sees no failure
    # (README: "failed calls seen by the caller", target 0 in picker mode).
    assert result["calls"] > 100 and result["failed_calls"] == 0, result["samples"]
    assert result["calls"] == sum(s["calls"] for s in result["samples"])
    assert result["killed_pid_dead"] is True
    assert (
        not psutil.pid_exists(result["killed_pid"])
        or psutil.Process(result["killed_pid"]).status() == psutil.STATUS_ZOMBIE
    )
    assert "failed calls" in discovery.describe(result)


def test_overhead_compares_discovery_with_round_robin_and_a_plain_channel():
    result = discovery.overhead(registry="consul", mode="native", runs=1, seconds=0.3)
    assert_shape(
        result,
        {
            "ratio_vs_round_robin": float,
            "ratio_vs_plain_channel": float,
            "discovery_calls_per_second": float,
            "round_robin_calls_per_second": float,
            "plain_calls_per_second": float,
            "target_ratio_vs_round_robin": float,
            "samples": list,
        },
    )
    assert result["discovery_calls_per_second"] > 0 and result["plain_calls_per_second"] > 0
    assert "ratio vs round_robin" in discovery.describe(result)


def test_cli_takes_the_discovery_benchmarks_and_keeps_startup():
    parser = cli.build_parser()
    args = parser.parse_args(["bench", "failover", "--registry", "etcd", "--mode", "native", "--runs", "2", "--json"])
    assert (args.which, args.registry, args.mode, args.runs, args.json) == ("failover", "etcd", "native", 2, True)
    args = parser.parse_args(["bench", "startup"])
    assert (args.which, args.registry, args.mode, args.runs) == ("startup", "consul", "picker", 3)
