"""The progress board as a real JupyterHub 6 runs it: learners' tokens, the instructor's OAuth login, a learner's kernel
reporting, and a reset reaching a learner's lab through their single-user server."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
import websocket
from browsers import CHROMIUM_ARGS, chromium_or_skip
from classroom_hub import (
    ADMIN_PASSWORD,
    BOARD_PORT,
    BOARD_URL,
    HUB_PORT,
    HUB_URL,
    PROXY_PORT,
    BoardHub,
    login,
    start_hub,
    stop_hub,
)

from lab_services.classroom.board_page import REFRESH_SECONDS
from lab_services.core.wait import wait_until
from lab_services.runtime import ClusterConfig, open_cluster

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[BoardHub]:
    hub = start_hub(tmp_path_factory.mktemp("hub"))
    try:
        for name in ("alice", "bob"):  # the hub made "teacher" at start, an admin (c.Authenticator.admin_users)
            hub.add_user(name)
        yield hub
    finally:
        stop_hub(hub)
        left = [port for port in (PROXY_PORT, HUB_PORT, BOARD_PORT) if _listening(port)]
        assert not left, f"ports still served after the hub stopped: {left}"
        assert hub.hub.learner_processes() == [], "a learner's server outlived the hub"


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def alice_server(hub: BoardHub) -> Iterator[None]:
    """alice's single-user server, started once for the tests that need it (a start costs seconds), with the lab it
    starts for lesson 00 up, so that lab's start does not overlap what a test times."""
    hub.start_server("alice")
    lab = open_cluster(hub.state_dir("alice"), "local")
    wait_until(lab.running, 120, "alice's server to start lesson 00's lab")
    yield
    hub.stop_server("alice")


@pytest.fixture(scope="module")
def tokens(hub: BoardHub) -> dict[str, str]:
    return {name: hub.token_for(name) for name in ("alice", "bob", "teacher")}


def _as(token: str | None) -> dict[str, str]:
    return {"Authorization": f"token {token}"} if token else {}


def post_result(token: str | None, body: object) -> requests.Response:
    data = body if isinstance(body, str) else json.dumps(body)
    return requests.post(BOARD_URL + "api/results", data=data, headers=_as(token), timeout=10)


def own_results(token: str) -> list[dict]:
    response = requests.get(BOARD_URL + "api/results/me", headers=_as(token), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def board(token: str) -> dict:
    response = requests.get(BOARD_URL + "api/board", headers=_as(token), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_learner_writes_under_their_own_name_whatever_the_body_says(hub, tokens):
    check = f"impersonation-{uuid.uuid4().hex[:6]}"
    response = post_result(tokens["alice"], {"lesson": "02", "check": check, "passed": True, "learner": "bob"})
    assert response.status_code == 201, response.text
    assert response.json()["learner"] == "alice"
    assert [r["check"] for r in own_results(tokens["alice"]) if r["check"] == check] == [check]
    assert all(r["check"] != check for r in own_results(tokens["bob"])), "bob sees a result alice wrote"


def test_a_learner_reads_only_their_own_results(hub, tokens):
    check = f"private-{uuid.uuid4().hex[:6]}"
    assert post_result(tokens["bob"], {"lesson": "03", "check": check, "passed": False}).status_code == 201
    assert check in {r["check"] for r in own_results(tokens["bob"])}
    assert check not in {r["check"] for r in own_results(tokens["alice"])}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "body"),
        ([1, 2], "body"),
        ({"check": "c", "passed": True}, "lesson"),
        ({"lesson": "02", "check": " ", "passed": True}, "check"),
        ({"lesson": "02", "check": "c", "passed": "yes"}, "passed"),
        ({"lesson": "02", "check": "c", "passed": True, "detail": 5}, "detail"),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(hub, tokens, body, field):
    response = post_result(tokens["alice"], body)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(f"invalid argument: {field}:"), response.json()


@pytest.mark.parametrize("token", [None, "0123456789abcdef0123456789abcdef"], ids=["no token", "a made-up token"])
def test_a_token_the_hub_did_not_issue_is_refused(hub, token):
    response = post_result(token, {"lesson": "02", "check": "forged", "passed": True})
    assert response.status_code == 403, response.text
    assert requests.get(BOARD_URL + "api/results/me", headers=_as(token), timeout=10).status_code == 403


def test_the_board_is_refused_to_a_learner_and_served_to_an_admin(hub, tokens):
    assert (
        post_result(tokens["alice"], {"lesson": "04", "check": "seen-by-teacher", "passed": False}).status_code == 201
    )
    for url in (BOARD_URL, BOARD_URL + "api/board"):
        refused = requests.get(url, headers=_as(tokens["alice"]), timeout=10, allow_redirects=False)
        assert refused.status_code == 403, f"{url}: {refused.status_code} {refused.text[:200]}"
    rows = {row["learner"]: row for row in board(tokens["teacher"])["learners"]}
    assert rows["alice"]["check"] == "seen-by-teacher"
    assert rows["alice"]["passed"] is False


def test_the_instructor_opens_the_board_in_a_browser_through_the_hubs_oauth(hub):
    teacher = login("teacher")
    page = teacher.get(BOARD_URL, timeout=30)
    assert page.status_code == 200, page.text[:300]
    assert "Classroom progress" in page.text
    assert isinstance(teacher.get(BOARD_URL + "api/board", timeout=10).json()["learners"], list)
    # The cookie alone does not make a POST: without the page's XSRF token another site could press the button.
    assert teacher.post(BOARD_URL + "api/learners/bob/reset", timeout=10).status_code == 403
    learner = login("bob")
    assert learner.get(BOARD_URL, timeout=30).status_code == 403


def _execute(ws: websocket.WebSocket, session: str, code: str) -> str:
    """Run `code` in the kernel behind `ws` (Jupyter's messaging protocol over the server's websocket); its status."""
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "username": "test",
                    "session": session,
                    "msg_type": "execute_request",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": True,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": False,
                },
                "channel": "shell",
            }
        )
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        message = json.loads(ws.recv())
        if message.get("msg_type") == "execute_reply" and message["parent_header"].get("msg_id") == msg_id:
            return message["content"]["status"]
    raise AssertionError(f"no reply to {code!r} within 60 s")


def test_a_checker_and_a_checkpoint_in_a_learners_kernel_reach_the_board(hub, tokens, alice_server):
    admin = {"Authorization": f"token {hub.token}"}
    notebook = "notebooks/07_retries_deadlines_breakers.ipynb"
    session = requests.post(
        f"{HUB_URL}user/alice/api/sessions",
        json={"path": notebook, "type": "notebook", "name": notebook.split("/")[-1], "kernel": {"name": "python3"}},
        headers=admin,
        timeout=60,
    )
    assert session.status_code == 201, session.text
    kernel = session.json()["kernel"]["id"]
    ws = websocket.create_connection(
        f"{HUB_URL.replace('http', 'ws', 1)}user/alice/api/kernels/{kernel}/channels",
        header=[f"Authorization: token {hub.token}"],
        timeout=60,
    )
    try:
        assert _execute(ws, "s", "from lab_services import lessons as lab") == "ok"
        assert _execute(ws, "s", 'lab.check("07-retry", lambda config: None)') == "ok"
        assert _execute(ws, "s", 'lab.check("07-retry", lab.published("07-retry"))') == "ok"
        assert _execute(ws, "s", 'assert 1 + 1 == 3, "arithmetic"') == "error"
    finally:
        ws.close()
        requests.delete(f"{HUB_URL}user/alice/api/sessions/{session.json()['id']}", headers=admin, timeout=30)
    results = own_results(tokens["alice"])
    mine = [(r["lesson"], r["check"], r["passed"]) for r in results if r["lesson"].startswith("07")]
    assert mine == [
        ("07_retries_deadlines_breakers", "07-retry", False),
        ("07_retries_deadlines_breakers", "07-retry", True),
        ("07_retries_deadlines_breakers", "checkpoint: 1 + 1 == 3", False),
    ], results
    assert results[-1]["detail"] == "AssertionError: arithmetic"
    checks = {(c["lesson"], c["check"]): c for c in board(tokens["teacher"])["checks"]}
    assert checks[("07_retries_deadlines_breakers", "07-retry")]["passed"] == 1


def reset(token: str, learner: str) -> requests.Response:
    return requests.post(BOARD_URL + f"api/learners/{learner}/reset", headers=_as(token), timeout=150)


def press_reset(browser: requests.Session, learner: str) -> requests.Response:
    """What the page's reset button does: open the board (OAuth), then POST with the page's XSRF token."""
    page = browser.get(BOARD_URL, timeout=30)
    assert page.status_code == 200, page.text[:300]
    xsrf = re.search(r'XSRF = "([^"]+)"', page.text)
    assert xsrf, "the board page carries no XSRF token for its reset button"
    return browser.post(
        BOARD_URL + f"api/learners/{learner}/reset", headers={"X-XSRFToken": xsrf.group(1)}, timeout=150
    )


def test_a_reset_for_a_learner_without_a_server_says_so(hub, tokens):
    answer = reset(tokens["teacher"], "bob")
    assert answer.status_code == 409, answer.text
    assert answer.json() == {
        "learner": "bob",
        "ok": False,
        "message": "bob's server is not running, so neither is their lab: nothing to reset",
    }
    assert reset(tokens["teacher"], "nobody").json()["message"] == "the hub has no learner named 'nobody'"


def test_a_learner_cannot_reset_anyone(hub, tokens):
    assert reset(tokens["alice"], "bob").status_code == 403


def test_the_reset_button_resets_a_learners_running_lab(hub, tokens, alice_server):
    lab = open_cluster(hub.state_dir("alice"), "local")
    lab.down()  # the lab alice's server started for lesson 00: without a lab, there is nothing to reset
    try:
        answer = reset(tokens["teacher"], "alice")
        assert answer.status_code == 409, answer.text
        assert answer.json()["message"].startswith("nothing to reset: no lab is running in"), answer.json()

        lab.launch(ClusterConfig(consul_servers=1, etcd_members=0, services=1, prometheus=False, registry="consul"))
        lab.stop("user-1")
        assert {p.name: p.state for p in lab.status().processes}["user-1"] == "stopped"

        answer = press_reset(login("teacher"), "alice")
        assert answer.status_code == 200, answer.text
        assert "started user-1" in answer.json()["steps"], answer.json()
        assert {p.name: p.state for p in lab.status().processes}["user-1"] == "running"
    finally:
        lab.down()


@pytest.mark.browser
def test_the_board_page_refreshes_itself_and_its_reset_button_answers_in_a_real_browser(hub, tokens):
    from playwright.sync_api import sync_playwright

    check = f"browser-{uuid.uuid4().hex[:6]}"
    assert post_result(tokens["bob"], {"lesson": "05", "check": check, "passed": False}).status_code == 201
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_or_skip()), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(BOARD_URL)  # the hub's login page first, then the OAuth round trip back to the board
            page.fill("input[name=username]", "teacher")
            page.fill("input[name=password]", ADMIN_PASSWORD)
            page.click("input[type=submit], button[type=submit]")
            bob = page.locator("#learners tr", has_text="bob")
            bob.get_by_text(check).wait_for(timeout=15_000)
            # A new result shows without reloading: the page polls the board's JSON.
            later = f"{check}-later"
            assert post_result(tokens["bob"], {"lesson": "05", "check": later, "passed": True}).status_code == 201
            bob.get_by_text(later).wait_for(timeout=3_000 + REFRESH_SECONDS * 2_000)
            assert page.locator("#checks tr", has_text=later).inner_text().split("\t")[-2:] == ["1", "1"]
            dialogs = []

            def answer(dialog) -> None:
                dialogs.append(dialog.message)
                dialog.accept()

            page.on("dialog", answer)
            bob.get_by_role("button", name="reset").click()
            page.wait_for_function("document.querySelectorAll('button[disabled]').length === 0", timeout=15_000)
            assert dialogs[0] == "Reset bob's lab?"
            assert dialogs[1] == "bob: bob's server is not running, so neither is their lab: nothing to reset"
        finally:
            browser.close()


def test_the_board_service_listens_where_board_service_said(hub):
    """The managed service answers on 127.0.0.1 at the port given to board_service, under its prefix."""
    response = requests.get(f"http://127.0.0.1:{BOARD_PORT}/services/progress/api/results/me", timeout=5)
    assert response.status_code == 403
