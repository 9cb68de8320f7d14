"""The lessons' reporter: what a learner's kernel sends the board, and that it sends nothing when no board is set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lab_services.core.paths import REPO_DIR
from lab_services.lessons import reporter

BOARD_PORT, DOWN_PORT = 18779, 18778


class RecordingBoard(ThreadingHTTPServer):
    """A real listening socket that counts every connection and answers each POST with `status`."""

    def __init__(self, port: int, status: int = 201, answer: dict | None = None):
        self.connections = 0
        self.requests: list[dict] = []
        self.status, self.answer = status, answer or {}
        super().__init__(("127.0.0.1", port), _Recorder)

    def verify_request(self, request, client_address) -> bool:
        self.connections += 1
        return True


class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(self.server.answer).encode())

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def board_at() -> Iterator:
    servers = []

    def start(status: int = 201, answer: dict | None = None) -> RecordingBoard:
        server = RecordingBoard(BOARD_PORT, status, answer)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def fresh_warning(monkeypatch):
    monkeypatch.setattr(reporter, "_warned", False)


def test_a_report_posts_the_result_with_the_learners_token(board_at, monkeypatch):
    board = board_at()
    monkeypatch.setenv("LAB_BOARD_URL", f"http://127.0.0.1:{BOARD_PORT}/services/progress/api/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "learner-token")
    assert reporter.report("02_registration", "02-ttl", False, "no heartbeat") is True
    (request,) = board.requests
    assert request["path"] == "/services/progress/api/results"
    assert request["headers"]["Authorization"] == "token learner-token"
    assert request["body"] == {
        "lesson": "02_registration",
        "check": "02-ttl",
        "passed": False,
        "detail": "no heartbeat",
    }


def test_a_board_that_is_down_costs_one_warning_and_no_exception(monkeypatch, capsys):
    monkeypatch.setenv("LAB_BOARD_URL", f"http://127.0.0.1:{DOWN_PORT}/api/")
    assert reporter.report("02", "02-ttl", True) is False
    assert reporter.report("02", "02-ttl", True) is False
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"classroom board: the board at http://127.0.0.1:{DOWN_PORT}/api/ did not answer")
    assert warnings[0].endswith("your results are not reported, the lesson goes on")


def test_a_refusal_is_warned_with_the_boards_reason(board_at, monkeypatch, capsys):
    board_at(403, {"error": "a token the hub issued to a learner with access to this service is required"})
    monkeypatch.setenv("LAB_BOARD_URL", f"http://127.0.0.1:{BOARD_PORT}/api/")
    assert reporter.report("02", "02-ttl", True) is False
    assert capsys.readouterr().err.startswith(
        "classroom board: the board refused the report (HTTP 403: a token the hub issued to a learner"
    )


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ('assert seconds < 10, f"took {seconds}"\nassert ok', "checkpoint: seconds < 10"),
        ("# the checks\nassert x == 1  # why\n", "checkpoint: x == 1"),
        (
            'running = [p for p in ps if p.up]\nassert running == ps\nprint("all checkpoints hold")',
            "checkpoint: running == ps",
        ),
        ("server.stop()\nassert not server.running", None),
        ("for p in ps:\n    assert p.up", "checkpoint: p.up"),
        ("for p in ps:\n    for c in p.checks:\n        assert c.ok\nassert ps", "checkpoint: c.ok"),
        ("for p in ps:\n    p.stop()\n    assert not p.up", None),
        ("for p in ps:\n    assert p.up\nelse:\n    restart()", None),
        ("print('assert')", None),
        ("", None),
        ("assert (", None),
        ("assert '\0'", None),
    ],
)
def test_a_checkpoint_is_a_cell_of_asserts_with_nothing_but_names_and_a_print(source, name):
    assert reporter.checkpoint_name(source) == name


def test_a_long_condition_is_shortened_in_the_checkpoints_name():
    name = reporter.checkpoint_name("assert " + " and ".join(f"x{i}" for i in range(40)))
    assert len(name) == len("checkpoint: ") + reporter.CHECKPOINT_NAME_LENGTH
    assert name.endswith("…")


# A learner's kernel in miniature: IPython, the facade, a checkpoint cell and a checker, as a lesson runs them.
KERNEL = textwrap.dedent(
    """
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    shell.run_cell("from lab_services import lessons as lab")
    shell.run_cell("assert 1 + 1 == 3, 'arithmetic'")
    shell.run_cell("lab.check('07-retry', lambda config: None)")
    """
)


def run_kernel(board_url: str | None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "LAB_BOARD_URL"}
    # Everything a hub gives a learner's kernel, pointing at the listening socket: only LAB_BOARD_URL may turn it on.
    hub = f"http://127.0.0.1:{BOARD_PORT}/"
    env.update(
        JUPYTERHUB_API_TOKEN="learner-token",
        JUPYTERHUB_API_URL=hub + "hub/api",
        JUPYTERHUB_SERVICE_URL=hub,
        JPY_SESSION_NAME="/home/alice/notebooks/07_retries_deadlines_breakers.ipynb",
        PYTHONPATH=os.pathsep.join([str(REPO_DIR), env.get("PYTHONPATH", "")]),
    )
    if board_url:
        env["LAB_BOARD_URL"] = board_url
    return subprocess.run([sys.executable, "-c", KERNEL], env=env, capture_output=True, text=True, timeout=120)


def test_a_kernel_reports_its_checkpoints_and_checkers_to_a_configured_board(board_at):
    board = board_at()
    done = run_kernel(f"http://127.0.0.1:{BOARD_PORT}/services/progress/api/")
    assert done.returncode == 0, done.stderr
    assert [(r["body"]["lesson"], r["body"]["check"], r["body"]["passed"]) for r in board.requests] == [
        ("07_retries_deadlines_breakers", "checkpoint: 1 + 1 == 3", False),
        ("07_retries_deadlines_breakers", "07-retry", False),
    ]


def test_without_a_board_nothing_is_sent(board_at):
    board = board_at()
    done = run_kernel(None)
    assert done.returncode == 0, done.stderr
    assert "classroom board" not in done.stderr
    assert board.connections == 0, f"the reporter connected {board.connections} times with no board configured"
