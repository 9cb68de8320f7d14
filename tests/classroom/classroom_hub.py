"""The board's tests' hub: the lab's own launcher (`lab_services/classroom/hub.py`, learners as local processes, the
board as its managed service) on the tests' ports, with the few helpers those tests use on top of it.

The proxy listens on 18765, the hub on 18766 (its proxy's API on 18767) and the board on 18770, all on 127.0.0.1;
the learners' corners start at slot 10, whose ports meet neither the suite's workers' nor the other hub tests'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from lab_services.classroom.hub import Hub
from lab_services.classroom.settings import HubSettings

PROXY_PORT, HUB_PORT, BOARD_PORT = 18765, 18766, 18770
HUB_URL = f"http://127.0.0.1:{PROXY_PORT}/"
BOARD_URL = f"{HUB_URL}services/progress/"
PASSWORD = "classroom-test-password"
ADMIN, ADMIN_PASSWORD = "teacher", "classroom-test-admin-password-32-chars-or-more"
FIRST_SLOT = 10
# Lesson 00's cell that starts the lab, and its checker with the published solution, as a learner's kernel runs
# them; each hub test appends the line that prints what it needs to know.
LESSON_00_CHECKED = """
import json, os, socket
from lab_services import lessons as lab
cluster = lab.ensure_cluster(consul_servers=1, etcd_members=1, services=2)
status = cluster.status()
result = lab.check("00-shape", lab.exercises.lesson_00.read_shape,
                   consul_http=status.consul.http[0], etcd_endpoints=status.etcd.endpoints)
assert result.ok, result
"""


@dataclass
class BoardHub:
    """A running classroom hub: its REST API through the launcher's token, as `requests` answers."""

    hub: Hub

    @property
    def directory(self) -> Path:
        return self.hub.settings.data_dir

    @property
    def token(self) -> str:
        return self.hub.settings.api_token

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{HUB_URL}hub/api/{path}", headers=headers, timeout=30, **kwargs)

    def add_user(self, name: str) -> None:
        response = self.api("POST", "users", json={"usernames": [name]})
        assert response.status_code in (201, 409), response.text

    def token_for(self, name: str) -> str:
        """A token the hub issues to `name`, allowed to reach the board (what a learner's server token also holds)."""
        response = self.api(
            "POST", f"users/{name}/tokens", json={"scopes": ["access:services!service=progress"], "note": "test"}
        )
        assert response.status_code == 201, response.text
        return response.json()["token"]

    def start_server(self, name: str) -> None:
        self.hub.start_server(name, timeout=90)

    def stop_server(self, name: str) -> None:
        self.hub.stop_server(name)

    def state_dir(self, name: str) -> Path:
        """Where the hub keeps the learner's lab (core/learner.py: one corner per learner)."""
        return self.directory / "learners" / name

    def log_tail(self, lines: int = 60) -> str:
        return self.hub.tail(lines)


def start_hub(directory: Path) -> BoardHub:
    settings = HubSettings(
        directory,
        port=PROXY_PORT,
        hub_port=HUB_PORT,
        board_port=BOARD_PORT,
        admin=ADMIN,
        learner_password=PASSWORD,
        admin_password=ADMIN_PASSWORD,
        first_slot=FIRST_SLOT,
        stuck_minutes=1,
    )
    return BoardHub(Hub(settings).start())


def stop_hub(hub: BoardHub) -> None:
    hub.hub.stop()


def login(name: str) -> requests.Session:
    """A browser's session: logged in to the hub through the login form and its XSRF (the instructor with the
    admin password, anyone else with the learners')."""
    session = requests.Session()
    form = session.get(f"{HUB_URL}hub/login", timeout=10)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
    assert xsrf, f"no _xsrf field on the hub's login page:\n{form.text[:500]}"
    password = ADMIN_PASSWORD if name == ADMIN else PASSWORD
    response = session.post(
        f"{HUB_URL}hub/login",
        data={"username": name, "password": password, "_xsrf": xsrf.group(1)},
        timeout=30,
        allow_redirects=False,
    )
    assert response.status_code == 302, f"login as {name} answered {response.status_code}: {response.text[:300]}"
    return session
