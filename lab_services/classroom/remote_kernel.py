"""Run code in a learner's kernel through the hub, as their browser tab does: the Jupyter server's REST API starts a
kernel, its websocket carries an `execute_request`, and the replies say what was printed and whether it raised."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from dataclasses import dataclass

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from lab_services.core.errors import LabError


class KernelError(LabError, RuntimeError):
    """The code raised in the learner's kernel; the message is the kernel's own `ename: evalue`."""


@dataclass
class RemoteKernel:
    """One kernel on a learner's server at `server_url` (e.g. http://127.0.0.1:8000/user/alice/)."""

    server_url: str
    token: str
    kernel_id: str = ""

    def _request(self, method: str, path: str) -> dict:
        request = urllib.request.Request(
            f"{self.server_url}api/{path}",
            data=b"{}" if method == "POST" else None,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            body = answer.read()
        return json.loads(body) if body else {}

    def start(self) -> RemoteKernel:
        self.kernel_id = self._request("POST", "kernels")["id"]
        return self

    def shutdown(self) -> None:
        if self.kernel_id:
            self._request("DELETE", f"kernels/{self.kernel_id}")
            self.kernel_id = ""

    def execute(self, code: str, timeout: float = 300.0) -> str:
        """What the code printed; KernelError with the kernel's error if it raised."""
        return asyncio.run(asyncio.wait_for(self._execute(code), timeout))

    async def _execute(self, code: str) -> str:
        url = f"{self.server_url.replace('http', 'ws', 1)}api/kernels/{self.kernel_id}/channels"
        socket = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {self.token}"}))
        msg_id = uuid.uuid4().hex
        request = {
            "header": {
                "msg_id": msg_id,
                "msg_type": "execute_request",
                "username": "classroom",
                "session": uuid.uuid4().hex,
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
            "channel": "shell",
        }
        await socket.write_message(json.dumps(request))
        printed, error = [], None
        try:
            while True:
                raw = await socket.read_message()
                if raw is None:
                    raise KernelError("the kernel's websocket closed before the code finished")
                message = json.loads(raw)
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "stream":
                    printed.append(content["text"])
                elif kind == "error":
                    error = f"{content['ename']}: {content['evalue']}"
                elif kind == "status" and content["execution_state"] == "idle":
                    break
        finally:
            socket.close()
        if error:
            raise KernelError(error)
        return "".join(printed)
