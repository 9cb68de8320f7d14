"""The instructor's progress board: a JupyterHub managed service that learners' checks report to.

    python -m lab_services.classroom.board     # started by the hub, from the entry `board_service(...)` returns

Learners' kernels POST `<prefix>api/results` with their server's hub token (`lessons/reporter.py`); the hub says whose
token it is, so nobody can write another learner's results, and a token the hub did not issue is refused. A learner
reads only their own results (`<prefix>api/results/me`). The instructor (a hub admin, or a member of the hub group
`instructors`) opens `<prefix>` in a browser, logged in through the hub's OAuth: who is on which lesson, who is stuck
on one check, pass counts per check, and a reset button per learner, which asks that learner's single-user server
(`server_extension.py`) to reset their lab.

Authentication is JupyterHub's own (`jupyterhub.services.auth.HubOAuth`); this module only decides who may do what.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated, UserNotAllowed
from tornado import httpclient, ioloop, web

from lab_services.classroom import BOARD_URL_ENV, RESET_PATH, SERVICE_NAME
from lab_services.classroom.board_page import render_board_page
from lab_services.classroom.board_store import ResultStore, parse_result
from lab_services.core.errors import BadInputError

# The hub group whose members see the board besides the hub's admins.
INSTRUCTORS_GROUP = "instructors"
# The environment the service reads besides JupyterHub's own (JUPYTERHUB_API_TOKEN, _API_URL, _SERVICE_URL, ...).
DB_ENV = "LAB_BOARD_DB"
STUCK_ENV = "LAB_BOARD_STUCK_MINUTES"
HUB_URL_ENV = "LAB_BOARD_HUB_URL"
# A reset restarts the lab's stopped processes and waits until they are ready: seconds, not minutes.
RESET_TIMEOUT = 120.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BoardService:
    """Everything the hub's configuration needs for the board, from `board_service`.

    - `service`: one entry of `c.JupyterHub.services`.
    - `roles`: entries for `c.JupyterHub.load_roles`: the service's own role (`read:servers`, to see whether a
      learner's server runs, and `access:servers`, to call it for a reset) and the default `user` role extended
      with `access:services!service=progress` (a user's token may be sent to the board only with that scope). A
      hub that overrides `user` itself must merge the scope.
    - `server_token_scopes`: for `c.Spawner.server_token_scopes`: the scopes of each learner server's
      JUPYTERHUB_API_TOKEN (the one their kernels inherit and report with): the hub's default `server` role plus
      access to the board.
    - `server_args`: for `c.Spawner.args`: loads `server_extension.py` into each learner's server, which is what the
      reset button calls.
    """

    service: dict[str, Any]
    roles: list[dict[str, Any]]
    server_token_scopes: list[str]
    server_args: list[str] = field(
        default_factory=lambda: ["--ServerApp.jpserver_extensions=lab_services.classroom.server_extension=True"]
    )

    def learner_environment(self, hub_url: str) -> dict[str, str]:
        """For `c.Spawner.environment`: LAB_BOARD_URL, the board's API base as a learner's kernel reaches the hub
        (`hub_url`, the hub's public URL with its base path, e.g. "http://127.0.0.1:8000/")."""
        return {BOARD_URL_ENV: f"{hub_url.rstrip('/')}/services/{SERVICE_NAME}/api/"}


def board_service(
    port: int, data_dir: Path, stuck_minutes: int = 10, hub_url: str = "", ip: str = "127.0.0.1"
) -> BoardService:
    """The board as a JupyterHub managed service listening on `ip`:`port`, keeping its results in
    `data_dir`/board.sqlite; a learner is stuck when their latest check has failed for `stuck_minutes`.

    `hub_url` is the hub's public URL (the proxy, with its base path): a reset reaches the learner's server through it.
    Left empty, the service uses JUPYTERHUB_PUBLIC_HUB_URL, which the hub sets when `c.JupyterHub.public_url` is.
    """
    if not 0 < port < 65536:
        raise BadInputError(f"invalid argument: port: {port}; give a TCP port between 1 and 65535")
    if stuck_minutes < 1:
        raise BadInputError(f"invalid argument: stuck_minutes: {stuck_minutes}; give 1 or more")
    environment = {DB_ENV: str(Path(data_dir) / "board.sqlite"), STUCK_ENV: str(stuck_minutes)}
    if hub_url:
        environment[HUB_URL_ENV] = hub_url
    service = {
        "name": SERVICE_NAME,
        "display": True,
        "url": f"http://{ip}:{port}",
        "command": [sys.executable, "-m", "lab_services.classroom.board"],
        "environment": environment,
        "oauth_no_confirm": True,
    }
    roles = [
        {"name": "progress-board", "scopes": ["read:servers", "access:servers"], "services": [SERVICE_NAME]},
        {"name": "user", "scopes": ["self", f"access:services!service={SERVICE_NAME}"]},
    ]
    token_scopes = ["users:activity!user", "access:servers!server", f"access:services!service={SERVICE_NAME}"]
    return BoardService(service, roles, token_scopes)


@dataclass(frozen=True)
class BoardSettings:
    """What the running service reads from its environment."""

    prefix: str  # JUPYTERHUB_SERVICE_PREFIX, e.g. /services/progress/
    url: str  # JUPYTERHUB_SERVICE_URL: where to listen
    db: Path
    stuck_minutes: float
    hub_url: str  # the hub's public URL with base path, for resets; "" when unknown

    @classmethod
    def from_environment(cls, env: dict[str, str] | None = None) -> BoardSettings:
        env = dict(os.environ if env is None else env)
        missing = [name for name in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_SERVICE_URL", DB_ENV) if not env.get(name)]
        if missing:
            raise BadInputError(
                f"invalid argument: environment: {', '.join(missing)} unset; the board runs as a JupyterHub managed "
                "service (see board_service), which sets them"
            )
        try:
            stuck = float(env.get(STUCK_ENV, "10"))
        except ValueError:
            raise BadInputError(f"invalid argument: {STUCK_ENV}: {env[STUCK_ENV]!r}; give minutes, e.g. 10") from None
        hub_url = env.get(HUB_URL_ENV) or env.get("JUPYTERHUB_PUBLIC_HUB_URL", "").removesuffix("hub/")
        return cls(
            prefix=env.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE_NAME}/"),
            url=env["JUPYTERHUB_SERVICE_URL"],
            db=Path(env[DB_ENV]),
            stuck_minutes=stuck,
            hub_url=hub_url,
        )


class _Handler(HubOAuthenticated, web.RequestHandler):
    """Identifies the caller with the hub (token in the header, or the OAuth cookie a browser got) before any method."""

    def initialize(self, hub_auth: HubOAuth, store: ResultStore, settings: BoardSettings) -> None:
        self.hub_auth = hub_auth
        self.store = store
        self.board = settings

    async def prepare(self) -> None:
        model = await self.hub_auth.get_user(self, sync=False)
        try:
            self._hub_auth_user_cache = self.check_hub_user(model) if model else None
        except UserNotAllowed:
            self._hub_auth_user_cache = None

    def learner(self) -> str:
        """The name of the hub user whose token or cookie this is; 403 for anyone else (a service, no token)."""
        user = self.current_user
        if not user:
            raise web.HTTPError(403, "a token the hub issued to a learner with access to this service is required")
        if user.get("kind") != "user":
            raise web.HTTPError(403, f"only learners report results; {user.get('kind')} {user.get('name')} is not one")
        return user["name"]

    def require_instructor(self) -> str:
        name = self.learner()
        user = self.current_user
        if not (user.get("admin") or INSTRUCTORS_GROUP in user.get("groups", [])):
            raise web.HTTPError(
                403, f"the board is for instructors; {name} is not a hub admin nor in '{INSTRUCTORS_GROUP}'"
            )
        return name

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        message = error.log_message if isinstance(error, web.HTTPError) and error.log_message else self._reason
        self.write_json({"error": message}, status_code)


class ResultsHandler(_Handler):
    """POST <prefix>api/results: one report from a learner's kernel, stored under the token's owner."""

    def post(self) -> None:
        learner = self.learner()
        try:
            report = parse_result(json.loads(self.request.body or b"null"))
        except json.JSONDecodeError as err:
            raise web.HTTPError(400, f"invalid argument: body: not JSON ({err})") from None
        except BadInputError as err:
            raise web.HTTPError(400, str(err)) from None
        result = self.store.add(learner, report)
        self.write_json({"learner": learner, "lesson": result.lesson, "check": result.check, "at": result.at}, 201)


class OwnResultsHandler(_Handler):
    """GET <prefix>api/results/me: the caller's own results, oldest first (nobody reads another's)."""

    def get(self) -> None:
        learner = self.learner()
        results = [
            {"lesson": r.lesson, "check": r.check, "passed": r.passed, "detail": r.detail, "at": r.at}
            for r in self.store.for_learner(learner)
        ]
        self.write_json({"learner": learner, "results": results})


class BoardDataHandler(_Handler):
    """GET <prefix>api/board: the board's JSON, which the page polls (instructors only)."""

    def get(self) -> None:
        self.require_instructor()
        self.write_json(self.store.board(self.board.stuck_minutes * 60))


class ResetHandler(_Handler):
    """POST <prefix>api/learners/<name>/reset: reset that learner's lab through their single-user server.

    Answers 200 with the steps taken; otherwise `ok` false and a message: no such learner (404), their server is not
    running (409), their server found no lab to reset (409), or the reset failed or could not be asked for (502).
    """

    async def post(self, learner: str) -> None:
        self.require_instructor()
        if not self.board.hub_url:
            raise web.HTTPError(
                503,
                "the board does not know the hub's public URL: pass hub_url to board_service or set "
                "c.JupyterHub.public_url",
            )
        status, answer = await self._reset(learner)
        self.write_json({"learner": learner, "ok": status == 200, **answer}, status)

    async def _reset(self, learner: str) -> tuple[int, dict[str, Any]]:
        name = quote(learner, safe="")
        model = await self._fetch("GET", f"{self.hub_auth.api_url.rstrip('/')}/users/{name}")
        if model.code == 404:
            return 404, {"message": f"the hub has no learner named {learner!r}"}
        if model.code != 200:
            return 502, {"message": f"the hub answered HTTP {model.code} about {learner}: {_text(model)}"}
        if not json.loads(model.body).get("servers", {}).get("", {}).get("ready"):
            return 409, {"message": f"{learner}'s server is not running, so neither is their lab: nothing to reset"}
        response = await self._fetch("POST", f"{self.board.hub_url.rstrip('/')}/user/{name}/{RESET_PATH}")
        try:
            answer = json.loads(response.body or b"")
        except ValueError:
            answer = None
        if response.code in (200, 409, 500) and isinstance(answer, dict) and "message" in answer:
            return (response.code if response.code != 500 else 502), answer
        return 502, {
            "message": f"{learner}'s server did not reset (HTTP {response.code}: {_text(response)}); is the classroom "
            "server extension loaded there (BoardService.server_args)?"
        }

    async def _fetch(self, method: str, url: str) -> httpclient.HTTPResponse:
        request = httpclient.HTTPRequest(
            url,
            method=method,
            body=b"" if method == "POST" else None,
            headers={"Authorization": f"token {self.hub_auth.api_token}"},
            request_timeout=RESET_TIMEOUT,
            follow_redirects=False,
        )
        return await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)


def _text(response: httpclient.HTTPResponse) -> str:
    if response.code == 599:
        return str(response.error)
    return (response.body or b"")[:200].decode(errors="replace")


class BoardPageHandler(_Handler):
    """GET <prefix>: the board in a browser; logs in through the hub's OAuth first."""

    @web.authenticated
    def get(self) -> None:
        self.require_instructor()
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(render_board_page(self.board.prefix, self.xsrf_token.decode(), self.board.stuck_minutes))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        message = error.log_message if isinstance(error, web.HTTPError) and error.log_message else self._reason
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code}: {message}\n")


def make_app(settings: BoardSettings, hub_auth: HubOAuth | None = None) -> web.Application:
    # The one HubOAuth of the process: the OAuth callback handler finds it as HubOAuth.instance(). It reads the
    # service's token, client id and URLs from the environment the hub gave the service.
    hub_auth = hub_auth or HubOAuth.instance(cache_max_age=60)
    store = ResultStore(settings.db)
    args = {"hub_auth": hub_auth, "store": store, "settings": settings}
    prefix = settings.prefix
    return web.Application(
        [
            (prefix, BoardPageHandler, args),
            (prefix + "oauth_callback", HubOAuthCallbackHandler),
            (prefix + "api/results", ResultsHandler, args),
            (prefix + "api/results/me", OwnResultsHandler, args),
            (prefix + "api/board", BoardDataHandler, args),
            (prefix + r"api/learners/([^/]+)/reset", ResetHandler, args),
        ],
        cookie_secret=secrets.token_bytes(32),
        login_url=hub_auth.login_url,
        hub_auth=hub_auth,
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s board %(levelname)s %(message)s")
    settings = BoardSettings.from_environment()
    where = urlparse(settings.url)
    make_app(settings).listen(where.port or 80, where.hostname or "127.0.0.1")
    log.info("board at %s%s, results in %s", settings.url, settings.prefix, settings.db)
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
