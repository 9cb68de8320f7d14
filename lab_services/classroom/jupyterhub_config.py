"""JupyterHub's configuration for a classroom, read by `jupyterhub -f` (the launcher, `classroom/hub.py`, points
LAB_HUB_SETTINGS at the settings file it wrote). Only JupyterHub's own classes: a shared learners' password and an
instructor's own, each learner's server as a process of this machine (local) or in a container of their own (docker).
"""

# ruff: noqa: F821  (JupyterHub runs this file with `c` and `get_config` defined)
from __future__ import annotations

import os
from pathlib import Path

from lab_services.classroom import spawning
from lab_services.classroom.settings import HubSettings

settings = HubSettings.load(Path(os.environ["LAB_HUB_SETTINGS"]))
data = settings.data_dir
c = get_config()

c.JupyterHub.ip = settings.ip
c.JupyterHub.port = settings.port
c.JupyterHub.hub_port = settings.hub_port
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.hub_port + 1}"
c.ConfigurableHTTPProxy.command = [os.environ["LAB_HUB_PROXY"]]
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

# The launcher, the tests and `bench classroom` drive the hub through its REST API with this token.
c.JupyterHub.services = [{"name": "lab-admin", "api_token": settings.api_token}]
c.JupyterHub.load_roles = [
    {
        "name": "lab-admin",
        "scopes": ["admin:users", "admin:servers", "access:servers", "read:users"],
        "services": ["lab-admin"],
    }
]

spawning.configure(c, settings)
