"""JupyterHub's configuration for a classroom: `classroom/jupyterhub_config.py`, the file `jupyterhub -f` reads, calls
`configure` with the settings the launcher (`classroom/hub.py`) wrote. Only JupyterHub's own classes: a shared
learners' password and an instructor's own, each learner's server as a process of this machine (local) or in a
container of their own (docker), and the progress board as a managed service.
"""

from __future__ import annotations

from typing import Any

from lab_services.classroom import spawning
from lab_services.classroom.board import board_service
from lab_services.classroom.settings import HubSettings


def configure(c: Any, settings: HubSettings, proxy: str) -> None:
    """Fill JupyterHub's config object `c` for the classroom `settings`; `proxy` is configurable-http-proxy."""
    data = settings.data_dir

    c.JupyterHub.ip = settings.ip
    c.JupyterHub.port = settings.port
    c.JupyterHub.hub_port = settings.hub_port
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.hub_port + 1}"
    c.ConfigurableHTTPProxy.command = [proxy]
    c.ConfigurableHTTPProxy.pid_file = str(data / "proxy.pid")
    c.JupyterHub.db_url = f"sqlite:///{data / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(data / "jupyterhub.pid")
    c.JupyterHub.cleanup_servers = True  # stopping the hub stops every learner's server (and so their lab)

    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = settings.learner_password
    c.SharedPasswordAuthenticator.admin_password = settings.admin_password
    c.Authenticator.admin_users = {settings.admin}
    c.Authenticator.allow_all = True  # a workshop: whoever has the learners' password picks a name

    # The progress board (a managed service) where learners' checkpoints and checkers report; instructors open it from
    # the hub's home page. Learners in containers reach it on the classroom network's gateway, as they reach the hub.
    board_ip = settings.learners_reach_host or "127.0.0.1"
    board = board_service(
        settings.board_port, data / "board", settings.stuck_minutes, hub_url=settings.url, ip=board_ip
    )
    # The launcher, the tests and `bench classroom` drive the hub through its REST API with this token.
    c.JupyterHub.services = [board.service, {"name": "lab-admin", "api_token": settings.api_token}]
    c.JupyterHub.load_roles = [
        *board.roles,
        {
            "name": "lab-admin",
            "scopes": ["admin:users", "admin:servers", "access:servers", "read:users", "tokens"],
            "services": ["lab-admin"],
        },
    ]
    c.Spawner.server_token_scopes = board.server_token_scopes
    board_url = f"http://{board_ip}:{settings.board_port}/" if settings.learners_reach_host else settings.url
    spawning.configure(c, settings, args=board.server_args, environment=board.learner_environment(board_url))
