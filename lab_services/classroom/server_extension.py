"""A Jupyter server extension that resets the learner's lab when the instructor's board asks.

    jupyterhub-singleuser --ServerApp.jpserver_extensions=lab_services.classroom.server_extension=True

It adds `POST <base_url>lab-classroom/reset` to the learner's own server. Jupyter's (and on a hub, JupyterHub's)
authentication guards it: the board calls it with its service token, which holds `access:servers`; the learner may
call it too (it is their lab). The reset is the runtime's own (`Cluster.reset`): paused processes resumed, added
instances removed, stopped ones started, and what lessons left in Consul and etcd cleared.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from lab_services.classroom import RESET_PATH
from lab_services.core.errors import LabError
from lab_services.runtime import open_cluster


def reset_lab() -> tuple[int, dict[str, Any]]:
    """Reset the lab this server's learner runs (their LAB_STATE_DIR), as an HTTP status and a JSON answer."""
    cluster = open_cluster()
    if not cluster.running():
        return 409, {"reset": False, "message": f"nothing to reset: {cluster.not_running()}"}
    try:
        steps = cluster.reset()
    except LabError as err:
        return 500, {"reset": False, "message": f"the reset failed: {err}"}
    return 200, {"reset": True, "steps": steps, "message": f"reset the lab in {cluster.location}"}


class ResetHandler(APIHandler):
    auth_resource = "lab-classroom"

    @web.authenticated
    @authorized
    async def post(self) -> None:
        # A reset waits for restarted processes to be ready; the server keeps serving meanwhile.
        status, answer = await asyncio.to_thread(reset_lab)
        self.set_status(status)
        self.finish(json.dumps(answer))


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "lab_services.classroom.server_extension"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    web_app = serverapp.web_app
    route = url_path_join(web_app.settings["base_url"], RESET_PATH)
    web_app.add_handlers(".*$", [(route, ResetHandler)])
    serverapp.log.info("lab-classroom: POST %s resets this learner's lab", route)
