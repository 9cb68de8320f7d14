"""The board's memory and summary: who is where, who is stuck, how many passed each check; and what the hub gets."""

from __future__ import annotations

import sys

import pytest

from lab_services.classroom.board import BoardSettings, board_service
from lab_services.classroom.board_store import Report, ResultStore, parse_result
from lab_services.core.errors import BadInputError

MINUTE = 60.0


@pytest.fixture
def store(tmp_path):
    store = ResultStore(tmp_path / "board" / "board.sqlite")
    yield store
    store.close()


def test_the_board_shows_each_learners_latest_report(store):
    store.add("alice", Report("02", "02-ttl", False, "no heartbeat"), at=100)
    store.add("alice", Report("03", "03-v2-filter", True), at=200)
    store.add("bob", Report("02", "02-ttl", False, "no heartbeat"), at=150)
    rows = {row["learner"]: row for row in store.board(stuck_after=10 * MINUTE, now=300)["learners"]}
    assert (rows["alice"]["lesson"], rows["alice"]["check"], rows["alice"]["passed"]) == ("03", "03-v2-filter", True)
    assert (rows["bob"]["lesson"], rows["bob"]["passed"], rows["bob"]["detail"]) == ("02", False, "no heartbeat")


def test_a_learner_is_stuck_once_their_latest_check_has_failed_for_longer_than_the_limit(store):
    store.add("alice", Report("02", "02-ttl", False), at=0)
    store.add("alice", Report("02", "02-ttl", False), at=9 * MINUTE)
    assert store.board(stuck_after=10 * MINUTE, now=10 * MINUTE - 1)["learners"][0]["stuck"] is False
    row = store.board(stuck_after=10 * MINUTE, now=10 * MINUTE + 1)["learners"][0]
    assert row["stuck"] is True
    assert row["failing_since"] == 0, "stuck counts from the first failure of the run, not the latest"


def test_a_pass_in_between_starts_the_failing_run_again(store):
    store.add("alice", Report("02", "02-ttl", False), at=0)
    store.add("alice", Report("02", "02-ttl", True), at=5 * MINUTE)
    store.add("alice", Report("02", "02-ttl", False), at=6 * MINUTE)
    row = store.board(stuck_after=10 * MINUTE, now=12 * MINUTE)["learners"][0]
    assert (row["failing_since"], row["stuck"]) == (6 * MINUTE, False)


def test_a_learner_whose_latest_check_passed_is_never_stuck(store):
    store.add("alice", Report("02", "02-ttl", False), at=0)
    store.add("alice", Report("02", "checkpoint: x", True), at=1)
    row = store.board(stuck_after=MINUTE, now=60 * MINUTE)["learners"][0]
    assert (row["stuck"], row["failing_since"]) == (False, None)


def test_pass_counts_count_learners_not_attempts(store):
    for at, (learner, passed) in enumerate([("alice", False), ("alice", True), ("alice", True), ("bob", False)]):
        store.add(learner, Report("02", "02-ttl", passed), at=at)
    assert store.board(stuck_after=MINUTE, now=10)["checks"] == [
        {"lesson": "02", "check": "02-ttl", "tried": 2, "passed": 1}
    ]


def test_results_outlive_the_service(tmp_path):
    first = ResultStore(tmp_path / "board.sqlite")
    first.add("alice", Report("02", "02-ttl", True), at=1)
    first.close()
    again = ResultStore(tmp_path / "board.sqlite")
    assert [(r.learner, r.check, r.passed, r.at) for r in again.for_learner("alice")] == [("alice", "02-ttl", True, 1)]
    assert again.for_learner("bob") == []
    again.close()


def test_a_report_reads_only_the_fields_a_learner_may_choose():
    assert parse_result({"lesson": " 02 ", "check": "02-ttl", "passed": False, "learner": "bob", "at": 0}) == Report(
        "02", "02-ttl", False, ""
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "invalid argument: body: a JSON object {lesson, check, passed, detail?}, not NoneType"),
        ({"check": "c", "passed": True}, "invalid argument: lesson: a non-empty string is required, got None"),
        (
            {"lesson": "02", "check": "c" * 201, "passed": True},
            "invalid argument: check: at most 200 characters, got 201",
        ),
        ({"lesson": "02", "check": "c", "passed": 1}, "invalid argument: passed: true or false is required, got 1"),
        (
            {"lesson": "02", "check": "c", "passed": True, "detail": "d" * 2001},
            "invalid argument: detail: at most 2000 characters, got 2001",
        ),
    ],
)
def test_a_bad_report_names_its_field(body, message):
    with pytest.raises(BadInputError) as raised:
        parse_result(body)
    assert str(raised.value) == message


def test_board_service_gives_the_hub_a_managed_service_and_the_scopes_around_it(tmp_path):
    board = board_service(18770, tmp_path, stuck_minutes=7, hub_url="http://127.0.0.1:8000/")
    assert board.service["name"] == "progress"
    assert board.service["url"] == "http://127.0.0.1:18770"
    assert board.service["command"] == [sys.executable, "-m", "lab_services.classroom.board"]
    assert board.service["oauth_no_confirm"] is True
    assert board.service["environment"] == {
        "LAB_BOARD_DB": str(tmp_path / "board.sqlite"),
        "LAB_BOARD_STUCK_MINUTES": "7",
        "LAB_BOARD_HUB_URL": "http://127.0.0.1:8000/",
    }
    roles = {role["name"]: role for role in board.roles}
    assert roles["progress-board"] == {
        "name": "progress-board",
        "scopes": ["read:servers", "access:servers"],
        "services": ["progress"],
    }
    assert roles["user"]["scopes"] == ["self", "access:services!service=progress"]
    assert "access:services!service=progress" in board.server_token_scopes
    assert board.learner_environment("http://127.0.0.1:8000/") == {
        "LAB_BOARD_URL": "http://127.0.0.1:8000/services/progress/api/"
    }


@pytest.mark.parametrize(
    ("port", "minutes", "message"),
    [
        (0, 10, "invalid argument: port: 0; give a TCP port between 1 and 65535"),
        (18770, 0, "invalid argument: stuck_minutes: 0; give 1 or more"),
    ],
)
def test_board_service_refuses_what_cannot_work(tmp_path, port, minutes, message):
    with pytest.raises(BadInputError) as raised:
        board_service(port, tmp_path, stuck_minutes=minutes)
    assert str(raised.value) == message


def test_the_service_says_it_runs_under_a_hub_when_started_alone():
    with pytest.raises(BadInputError) as raised:
        BoardSettings.from_environment({"LAB_BOARD_DB": "/tmp/x.sqlite"})
    assert str(raised.value).startswith(
        "invalid argument: environment: JUPYTERHUB_API_TOKEN, JUPYTERHUB_SERVICE_URL unset; the board runs as a "
        "JupyterHub managed service"
    )


def test_the_hubs_public_url_comes_from_board_service_or_the_hub():
    env = {"JUPYTERHUB_API_TOKEN": "t", "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:18770", "LAB_BOARD_DB": "/x"}
    assert BoardSettings.from_environment(env).hub_url == ""
    public = {**env, "JUPYTERHUB_PUBLIC_HUB_URL": "https://hub.example.org/base/hub/"}
    assert BoardSettings.from_environment(public).hub_url == "https://hub.example.org/base/"
    assert BoardSettings.from_environment({**public, "LAB_BOARD_HUB_URL": "http://a/"}).hub_url == "http://a/"
