"""Failure drills against a real lab (3 Consul servers, 3 etcd members, one service): complete, ordered timelines."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lab_services.core.wait import wait_until
from lab_services.lessons import drills
from lab_services.registry.consul_health import ConsulHealth
from lab_services.runtime import open_cluster, processes
from lab_services.runtime.config import ClusterConfig


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("drills")
    lab = open_cluster(base, "local")
    lab.launch(ClusterConfig(consul_servers=3, etcd_members=3, services=1, prometheus=False), owner_pid=os.getpid())
    try:
        yield lab
    finally:
        lab.down()
    assert processes.live_records(base) == [], "the drills left processes behind"


def as_found(cluster) -> None:
    """Every process runs again, both raft clusters have a leader, and no probe instance is left registered."""
    status = cluster.status()
    assert all(p.state == "running" for p in status.processes), status.processes
    assert status.consul.leader and status.etcd.leader
    with ConsulHealth(status.consul.http[0]) as health:
        registered = health.instances(status.config.service_name)
    assert registered and not [i for i in registered if "-drill-" in i], (
        f"a probe instance is still registered: {registered}"
    )


def in_order(result: drills.DrillResult, *prefixes: str) -> list[float]:
    times = [result.at(p) for p in prefixes]
    assert None not in times, (
        f"missing events {[p for p, t in zip(prefixes, times, strict=True) if t is None]} in {result.events()}"
    )
    assert times == sorted(times), f"expected {prefixes} in this order, got {result.timeline}"
    return times


def complete(result: drills.DrillResult) -> None:
    assert result.timeline[0]["t"] == 0.0
    assert [e["t"] for e in result.timeline] == sorted(e["t"] for e in result.timeline)
    again = json.loads(result.to_json())
    assert again["drill"] == result.drill and again["timeline"] == result.timeline
    fig = result.plot()
    assert fig.axes[0].get_title() == f"drill {result.drill}"


def test_service_kill_is_noticed_by_consul_then_clients_then_recovers(cluster):
    result = drills.run(cluster, "service-kill")
    complete(result)
    assert result.timeline[0]["event"].startswith("kill -9 user-drill-")
    in_order(result, "kill -9", "removed from the passing set", "client: picker dropped", "started again")
    # The check and the passing set are polled on different paths, so only say both came within a check or two.
    assert result.at("Consul: check critical") < 5
    in_order(result, "client: picker dropped", "added to the passing set", "client: calls served by")
    # With a 1 s interval Consul notices within about a check; retries elsewhere hide the dead instance.
    assert result.summary["seconds_to_removed"] < 10
    assert result.summary["client_errors"] == 0, result.summary
    as_found(cluster)


def test_service_term_deregisters_first_so_clients_see_no_errors(cluster):
    result = drills.run(cluster, "service-term")
    complete(result)
    in_order(result, "SIGTERM", "removed from the passing set", "exited (code 0)", "started again")
    in_order(result, "client: picker dropped", "added to the passing set", "client: calls served by")
    assert result.summary["client_errors"] == 0 and result.summary["client_calls"] > 0, result.summary
    assert result.at("Consul: check critical") is None, "a graceful stop must not need a failed check"
    as_found(cluster)


def test_service_pause_is_only_noticed_by_timeouts(cluster):
    result = drills.run(cluster, "service-pause", call_timeout=0.5)
    complete(result)
    in_order(
        result,
        "SIGSTOP",
        "removed from the passing set",
        "client: picker dropped",
        "SIGCONT",
        "client: calls served by",
    )
    assert result.at("Consul: check critical") is not None
    assert set(result.summary["client_errors_by_code"]) <= {"DEADLINE_EXCEEDED"}, result.summary
    as_found(cluster)


def test_consul_leader_loss_elects_a_new_leader_and_keeps_data(cluster):
    result = drills.run(cluster, "consul-leader")
    complete(result)
    in_order(
        result,
        "kill -9",
        "new leader elected",
        "KV drills/consul-leader read back intact",
        "start consul-",
        "every registration passing again",
    )
    assert result.summary["new_leader"] != result.summary["old_leader"]
    assert (
        result.summary["kv_survived"]
        and result.summary["registrations_after"] == result.summary["registrations_before"] == 1
    )
    as_found(cluster)


def test_etcd_leader_loss_keeps_leases_and_watches(cluster):
    result = drills.run(cluster, "etcd-leader")
    complete(result)
    in_order(
        result,
        "kill -9",
        "new leader elected",
        "write accepted by the new leader",
        "start etcd-",
        "all 3 members agree",
    )
    assert result.at("watcher: saw key 'after' added") is not None and result.at("lease kept alive") is not None
    assert result.summary["lab_registrations"] == 1
    as_found(cluster)


def test_etcd_quorum_loss_refuses_writes_until_a_member_returns(cluster):
    result = drills.run(cluster, "etcd-quorum", down_for=1.0)
    complete(result)
    in_order(
        result,
        "kill -9",
        "failed: no quorum",
        "every one refused",
        "start etcd-",
        "quorum restored",
        "succeeded again",
        "all 3 members back",
    )
    assert result.summary["refused_writes"] >= 1
    as_found(cluster)


def test_unknown_drill_and_misplaced_parameters_are_refused(cluster):
    with pytest.raises(ValueError, match="use one of service-kill"):
        drills.run(cluster, "service-explode")
    # A service drill's knob given to a server drill, a server drill's to a service drill, and reaping to a
    # drill that never waits for it: each refused before anything is started or killed.
    with pytest.raises(TypeError, match="check_interval"):
        drills.run(cluster, "consul-leader", check_interval="10s")
    with pytest.raises(TypeError, match="lease_ttl"):
        drills.run(cluster, "service-kill", lease_ttl=5)
    with pytest.raises(TypeError, match="wait_deregister"):
        drills.run(cluster, "service-term", wait_deregister=True)
    as_found(cluster)


def cli(base, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab_services.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LAB_STATE_DIR": str(base)},
    )


def test_cli_lists_and_runs_a_drill_as_json(cluster):
    listed = cli(cluster.base, "drill", "--list")
    assert listed.returncode == 0 and all(name in listed.stdout for name in drills.DRILLS)
    ran = cli(cluster.base, "drill", "service-term", "--json")
    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout.strip().splitlines()[-1])
    assert answer["drill"] == "service-term" and answer["timeline"][0]["t"] == 0
    assert answer["summary"]["client_errors"] == 0
    refused = cli(cluster.base, "drill", "consul-leader", "--check-interval", "10s")
    assert refused.returncode == 2 and "only the service drills" in refused.stderr
    as_found(cluster)


def _stderr_on_a_pty(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `argv` with its stderr on a pseudo-terminal (as in a shell); its exit code and what it wrote there."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal's last handle
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    proc.stdout.read()
    return proc.wait(120), b"".join(chunks).decode(errors="replace")


def test_cli_drill_shows_its_progress_on_a_terminal_or_when_forced_and_never_under_json(cluster):
    env = {**os.environ, "LAB_STATE_DIR": str(cluster.base)}
    code, on_terminal = _stderr_on_a_pty([sys.executable, "-m", "lab_services.cli", "drill", "service-term"], env)
    assert code == 0, on_terminal
    assert (
        "[0/4] service-term: starting the probe under load" in on_terminal and "[4/4] service-term: done" in on_terminal
    ), on_terminal
    forced = cli(cluster.base, "drill", "service-term", "--progress")
    assert forced.returncode == 0 and "[1/4] service-term: fault injected" in forced.stderr, forced.stderr
    piped = cli(cluster.base, "drill", "service-term")  # stderr is a pipe: no progress line
    assert piped.returncode == 0 and "[0/4]" not in piped.stderr, piped.stderr
    quiet = cli(cluster.base, "drill", "service-term", "--json", "--progress")
    assert (
        quiet.returncode == 0 and "[0/4]" not in quiet.stderr and json.loads(quiet.stdout)["drill"] == "service-term"
    ), quiet.stderr
    as_found(cluster)


def test_an_interrupted_drill_puts_back_what_it_disturbed(cluster):
    """Ctrl-C while a probe hangs (SIGSTOP) under load: the drill stops and deregisters the probe before it exits."""
    import signal
    import threading

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab_services.cli",
            "drill",
            "service-pause",
            "--check-interval",
            "10s",
            "--check-timeout",
            "10s",
            "--progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "LAB_STATE_DIR": str(cluster.base)},
    )
    seen = bytearray()
    reader = threading.Thread(
        target=lambda: [seen.extend(c) for c in iter(lambda: proc.stderr.read1(256), b"")], daemon=True
    )
    reader.start()
    try:
        wait_until(lambda: b"[1/4] service-pause: fault injected" in seen, 90, "the drill to pause its probe")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130, seen.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    assert "interrupted; the lab is put back as it was" in seen.decode(), seen.decode()
    as_found(cluster)
    assert not [r for r in processes.live_records(cluster.base) if "drill" in r.name], (
        "a probe process outlived the drill"
    )


@pytest.mark.parametrize(
    "repeats, drill, says",
    [
        (0, "service-kill", "invalid argument: repeats: 0; a whole number of runs per setting, 1 or more"),
        (True, "service-kill", "invalid argument: repeats: True"),
        (2, "consul-leader", "invalid argument: drill: 'consul-leader'; compare with service-kill or service-pause"),
    ],
)
def test_removal_comparison_refuses_bad_arguments_before_any_drill(repeats, drill, says):
    with pytest.raises(ValueError) as info:
        drills.removal_comparison(None, {"default": {"check_interval": "10s"}}, repeats=repeats, drill=drill)
    assert str(info.value).startswith(says), info.value
