"""`discovery-lab` from a shell: up, status, per-process commands, down, and errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from lab_services.runtime import open_cluster, processes
from lab_services.runtime.config import ClusterConfig

CLI = [sys.executable, "-m", "lab_services.cli"]


def run(state, *args, check=True):
    result = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=180, env={**os.environ, "LAB_STATE_DIR": str(state)}
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_up_status_process_commands_and_down(tmp_path):
    up = run(tmp_path, "up", "--consul-servers", "1", "--etcd-members", "1", "--services", "1", "--json")
    status = json.loads(up.stdout)
    try:
        for key in ("backend", "consul", "etcd", "prometheus", "services", "processes", "binaries"):
            assert key in status
        assert status["consul"]["http"] and status["consul"]["dns"] and status["etcd"]["endpoints"]
        service = status["services"][0]
        assert {"id", "name", "address", "pid", "metrics_url"} <= set(service)
        assert {b: set(v) >= {"path", "version"} for b, v in status["binaries"].items()} == dict.fromkeys(
            ("consul", "etcd", "etcdctl", "prometheus"), True
        )

        # The CLI process has exited, yet the lab keeps running under its engine.
        again = json.loads(run(tmp_path, "status", "--json").stdout)
        assert again["services"][0]["pid"] == service["pid"]
        assert "user-1" in run(tmp_path, "status").stdout

        killed = json.loads(run(tmp_path, "kill", "user-1", "--json").stdout)
        assert killed["pid"] == service["pid"] and not processes.is_alive(service["pid"])
        started = json.loads(run(tmp_path, "start", "user-1", "--json").stdout)
        assert processes.is_alive(started["pid"])
        run(tmp_path, "pause", "user-1")
        assert json.loads(run(tmp_path, "status", "--json").stdout)["services"][0]["state"] == "paused"
        run(tmp_path, "resume", "user-1")

        wrong = run(tmp_path, "stop", "user-7", check=False)
        assert wrong.returncode == 2 and "no lab process named 'user-7'" in wrong.stderr
        twice = run(tmp_path, "up", "--json")
        assert json.loads(twice.stdout)["services"][0]["pid"] == started["pid"], "a second up reuses the running lab"
    finally:
        run(tmp_path, "down")
    assert processes.live_records(tmp_path) == []
    assert not processes.is_alive(started["pid"])
    assert "no lab was running" in run(tmp_path, "down").stdout, "down is idempotent"


def test_commands_without_a_lab_say_how_to_start_one(tmp_path):
    result = run(tmp_path, "kill", "user-1", check=False)
    assert result.returncode == 2
    assert "no lab is running" in result.stderr and "discovery-lab up" in result.stderr


def test_doctor_lists_binaries_with_versions(tmp_path):
    out = run(tmp_path, "doctor").stdout
    assert "consul" in out and "1.8.7" in out and "prometheus" in out and "2.24.1" in out


def test_unknown_backend_is_refused(tmp_path):
    result = run(tmp_path, "--backend", "kubernetes", "status", check=False)
    assert result.returncode == 2 and "LAB_BACKEND: 'kubernetes'" in result.stderr


def test_a_lab_owned_by_a_process_dies_with_it(tmp_path):
    """A notebook kernel that is killed takes the lab it started with it: the engine watches its owner."""
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    cluster = open_cluster(tmp_path, "local")
    status = cluster.launch(
        ClusterConfig(consul_servers=1, etcd_members=1, services=1, prometheus=False), owner_pid=owner.pid
    )
    pids = [p.pid for p in status.processes]
    engine = cluster.published()["pid"]
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(processes.is_alive(p) for p in [engine, *pids]):
        time.sleep(0.1)
    assert not [p for p in [engine, *pids] if processes.is_alive(p)], "lab processes outlived their owner"
    assert not cluster.running()


@pytest.mark.parametrize(
    "args,message",
    [
        (["up", "--consul-servers", "2"], "invalid choice: 2"),
        (["up", "--services", "99"], "services: 99"),
    ],
)
def test_bad_up_arguments(tmp_path, args, message):
    result = run(tmp_path, *args, check=False)
    assert result.returncode == 2 and message in result.stderr


def test_add_service_through_the_engine(tmp_path):
    run(tmp_path, "up", "--consul-servers", "1", "--etcd-members", "0", "--services", "0", "--no-prometheus")
    try:
        wrong = run(tmp_path, "add-service", "--meta", "noequals", check=False)
        assert wrong.returncode == 2 and "'noequals' is not KEY=VALUE" in wrong.stderr
        added = json.loads(run(tmp_path, "add-service", "--version", "v2", "--json").stdout)
        assert added["name"] == "user-1" and added["version"] == "v2" and processes.is_alive(added["pid"])
    finally:
        down = run(tmp_path, "down", "--volumes")
    assert down.stdout == "lab stopped\n" and not processes.is_alive(added["pid"])
    assert not (tmp_path / "cluster").exists(), "down --volumes removes the lab's data and logs"


# Each subcommand with input it must refuse, against a state directory where no lab runs: a usage mistake, a bad
# value, or a lab that is not there. Every one answers in one line on stderr and exits 2, never with a traceback.
BAD_INPUT = {
    "classroom": ["classroom", "--port", "70000"],
    "up": ["up", "--services", "99"],
    "down": ["down", "--everything"],
    "status": ["status"],
    "kill": ["kill", "user-1"],
    "stop": ["stop", "user-1"],
    "start": ["start"],
    "pause": ["pause", "user-1"],
    "resume": ["resume", "user-1"],
    "add-service": ["add-service", "--meta", "noequals"],
    "reset": ["reset"],
    "doctor": ["doctor", "--fix"],
    "fetch": ["fetch", "--mirror"],
    "jupyter": ["jupyter", "--port", "eighty"],
    "bench": ["bench", "warp-speed"],
    "config": ["config", "set", "latency_ms", "fast"],
    "capstone": ["capstone", "run", "/no/such/client.py"],
    "drill": ["drill", "service-kill"],
}


def test_every_subcommand_has_a_bad_input_case():
    from lab_services.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))
    assert sorted(commands.choices) == sorted(BAD_INPUT)


@pytest.mark.parametrize("argv", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_gets_one_line_and_exit_2(tmp_path, argv):
    result = run(tmp_path, *argv, check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("discovery-lab"), result.stderr
