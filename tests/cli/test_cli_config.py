"""`discovery-lab config`: set, get, history and rollback of runtime settings on a real lab whose instances follow
them."""

from __future__ import annotations

import json

import pytest
from test_cli import run

from lab_services.core.wait import wait_until


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    """A lab (1 Consul, 1 etcd, 2 instances following Consul) started and stopped through the CLI."""
    base = tmp_path_factory.mktemp("cli-config")
    run(
        base,
        "up",
        "--consul-servers",
        "1",
        "--etcd-members",
        "1",
        "--services",
        "2",
        "--no-prometheus",
        "--config-store",
        "consul",
    )
    try:
        yield base
    finally:
        run(base, "down")


def _get(state) -> dict:
    return json.loads(run(state, "config", "get", "--json").stdout)


def test_set_reaches_every_instance_and_get_shows_it(state):
    assert "revision" in run(state, "config", "set", "latency_ms", "25").stdout
    wait_until(
        lambda: all(i["values"]["latency_ms"] == 25 for i in _get(state)["instances"].values()),
        10,
        "both instances to apply latency_ms=25",
    )
    got = _get(state)
    assert got["store"] == "consul" and got["stored"]["latency_ms"] == "25"
    assert sorted(got["instances"]) == ["user-1", "user-2"]
    assert all(i["revision"] >= got["modified"]["latency_ms"] for i in got["instances"].values())
    assert "user-1" in run(state, "config", "get").stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("set", "colour", "red"), "colour: unknown setting"),
        (("set", "latency_ms", "9000"), "latency_ms: must be from 0 to 5000, got 9000"),
        (("set", "signups_enabled", "maybe"), "signups_enabled: must be true or false"),
        (("set", "overrides/v2/colour", "x"), "unknown setting"),
    ],
)
def test_an_unknown_key_or_a_bad_value_exits_2_and_changes_nothing(state, args, message):
    before = _get(state)["stored"]
    result = run(state, "config", *args, check=False)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert _get(state)["stored"] == before


@pytest.mark.parametrize("store", ["consul", "etcd"])
def test_history_rollback_and_cas(state, store):
    for text in ("first", "second"):
        run(state, "config", "set", "greeting", text, "--store", store)
    history = run(state, "config", "history", "greeting", "--store", store).stdout
    assert history.index("'first'") < history.index("'second'")
    assert "rolled back to 'first'" in run(state, "config", "rollback", "greeting", "--store", store).stdout
    stale = run(state, "config", "set", "greeting", "x", "--cas", "1", "--store", store, check=False)
    assert stale.returncode == 2 and "greeting: changed since revision 1" in stale.stderr
    wrong = run(state, "config", "rollback", "greeting", "999999", "--store", store, check=False)
    assert wrong.returncode == 2 and "greeting" in wrong.stderr
