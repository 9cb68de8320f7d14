"""A real JupyterHub 6 for the classroom tests: learners as local processes, the board as its managed service.

The hub runs on 127.0.0.1 only: the proxy on 18765, the hub itself on 18766, the proxy's API on 18767, the board on
18770 and the learners' servers on 18771-18773 (one per learner, fixed, so nothing binds outside the tests' ports).
A test service `tester`, with a token the test chose, creates the learners and their tokens through the REST API.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from lab_services.core.paths import REPO_DIR, cache_dir

PROXY_PORT, HUB_PORT, PROXY_API_PORT, BOARD_PORT = 18765, 18766, 18767, 18770
SERVER_PORTS = {"alice": 18771, "bob": 18772, "teacher": 18773}
HUB_URL = f"http://127.0.0.1:{PROXY_PORT}/"
BOARD_URL = f"{HUB_URL}services/progress/"
PASSWORD = "classroom-test-password"
# Each learner's lab moves its familiar ports by this and takes free ports from this range: the tests' own slice.
LAB_PORT_OFFSET, LAB_PORT_RANGE = "2000", "24000-24999"

CONFIG = """
import json, os
from pathlib import Path
from lab_services.classroom.board import board_service

here = Path({here!r})
board = board_service({board_port}, here / "board", stuck_minutes=1, hub_url={hub_url!r})
ports = json.loads({ports!r})

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {proxy_port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.db_url = "sqlite:///" + str(here / "hub.sqlite")
c.JupyterHub.cookie_secret_file = str(here / "cookie_secret")
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"teacher"}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = str(here / "home" / "{{username}}")
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = {args!r} + board.server_args
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
c.Spawner.server_token_scopes = board.server_token_scopes
c.Spawner.environment = {{
    **board.learner_environment({hub_url!r}),
    "PYTHONPATH": {pythonpath!r},
    "LAB_STATE_DIR": lambda spawner: str(here / "labs" / spawner.user.name),
    "LAB_PORT_OFFSET": {offset!r},
    "LAB_PORT_RANGE": {port_range!r},
}}

def fixed_port(spawner):
    spawner.port = ports[spawner.user.name]

c.Spawner.pre_spawn_hook = fixed_port
c.JupyterHub.services = [board.service, {{"name": "tester", "api_token": os.environ["TESTER_TOKEN"]}}]
c.JupyterHub.load_roles = board.roles + [
    {{"name": "tester", "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"],
      "services": ["tester"]}},
]
"""


@dataclass
class Hub:
    """A running hub: its REST API through the tester service's token, and its log."""

    process: subprocess.Popen
    directory: Path
    token: str

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
        response = self.api("POST", f"users/{name}/server")
        assert response.status_code in (201, 202, 400), response.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.api("GET", f"users/{name}").json()["servers"].get("", {}).get("ready"):
                return
            time.sleep(0.3)
        raise AssertionError(f"{name}'s server never became ready; hub log:\n{self.log_tail()}")

    def stop_server(self, name: str) -> None:
        response = self.api("DELETE", f"users/{name}/server")
        assert response.status_code in (202, 204, 400), response.text

    def log_tail(self, lines: int = 60) -> str:
        text = (self.directory / "hub.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def chp_path() -> Path:
    """JupyterHub's proxy, from the project's cache (LAB_CACHE_DIR moves it, as it moves the servers' binaries)."""
    path = cache_dir() / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"
    if not path.exists():
        raise FileNotFoundError(
            f"configurable-http-proxy is not at {path}; run `npm install configurable-http-proxy` in {path.parents[2]}"
        )
    return path


def start_hub(directory: Path) -> Hub:
    """Start a hub in `directory` and wait until its API answers; the caller stops it with `stop_hub`."""
    bin_dir = Path(sys.executable).parent
    pythonpath = os.pathsep.join([str(REPO_DIR), *filter(None, [os.environ.get("PYTHONPATH")])])
    # Only a root test run needs --allow-root; a real hub runs learners unprivileged.
    args = ["--allow-root"] if os.geteuid() == 0 else []
    (directory / "jupyterhub_config.py").write_text(
        CONFIG.format(
            here=str(directory),
            board_port=BOARD_PORT,
            hub_url=HUB_URL,
            ports=json.dumps(SERVER_PORTS),
            proxy_port=PROXY_PORT,
            hub_port=HUB_PORT,
            proxy_api_port=PROXY_API_PORT,
            chp=str(chp_path()),
            password=PASSWORD,
            singleuser=str(bin_dir / "jupyterhub-singleuser"),
            args=args,
            pythonpath=pythonpath,
            offset=LAB_PORT_OFFSET,
            port_range=LAB_PORT_RANGE,
        )
    )
    token = secrets.token_hex(16)
    env = {
        **os.environ,
        "TESTER_TOKEN": token,
        "PYTHONPATH": pythonpath,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(16),
    }
    log = (directory / "hub.log").open("wb")
    process = subprocess.Popen(
        [str(bin_dir / "jupyterhub"), "-f", str(directory / "jupyterhub_config.py")],
        cwd=directory,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    hub = Hub(process, directory, token)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the hub exited with {process.returncode}:\n{hub.log_tail()}")
        try:
            if requests.get(BOARD_URL + "api/results/me", timeout=2).status_code == 403:
                return hub
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    stop_hub(hub)
    raise AssertionError(f"the hub and its board never answered:\n{hub.log_tail()}")


def stop_hub(hub: Hub) -> None:
    """SIGTERM the hub (it stops the learners' servers and its services), then make sure its whole group is gone."""
    if hub.process.poll() is None:
        hub.process.send_signal(signal.SIGTERM)
        try:
            hub.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(hub.process.pid, signal.SIGKILL)
            hub.process.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(hub.process.pid, signal.SIGKILL)
    # The proxy runs in a session of its own, and a hub that failed while starting leaves it behind: its pid file
    # (JupyterHub's, in the hub's working directory) says which process it is.
    pid_file = hub.directory / "jupyterhub-proxy.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().strip() or 0)
        cmdline = Path(f"/proc/{pid}/cmdline")
        if pid and cmdline.exists() and b"configurable-http-proxy" in cmdline.read_bytes():
            os.kill(pid, signal.SIGTERM)


def login(name: str) -> requests.Session:
    """A browser's session: logged in to the hub with the dummy password, through the login form and its XSRF."""
    session = requests.Session()
    form = session.get(f"{HUB_URL}hub/login", timeout=10)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
    assert xsrf, f"no _xsrf field on the hub's login page:\n{form.text[:500]}"
    response = session.post(
        f"{HUB_URL}hub/login",
        data={"username": name, "password": PASSWORD, "_xsrf": xsrf.group(1)},
        timeout=30,
        allow_redirects=False,
    )
    assert response.status_code == 302, f"login as {name} answered {response.status_code}: {response.text[:300]}"
    return session
