"""The service's side HTTP port: /health for HTTP checks, /metrics for Prometheus, /admin/* for lessons.

Endpoints:
  GET  /health[?service=NAME]  200 "SERVING", or 503 with the status (the target of Consul HTTP checks)
  GET  /metrics                Prometheus exposition of the service's own registry
  GET  /admin/state            JSON: identity, health per service, faults, user count, sequence
  GET  /admin/settings         JSON: runtime settings applied, their revision, a rejection, the store's state
                               (only on an instance that follows a configuration store)
  POST /admin/health           JSON {"status": "SERVING"|"NOT_SERVING", "service": "" (default) or a service}
  POST /admin/faults           JSON {"latency_ms": >= 0, "error_rate": 0..1}; either field may be left out
  POST /admin/reset            JSON {} : no faults, every service SERVING, no users (the lab's reset)
Bad requests get 400 and JSON {"error": "<field>: <reason>"}.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from lab_services.core.errors import BadInputError
from lab_services.core.network import kernel_host, require_lab_host
from lab_services.core.ports import PortInUseError, holder
from lab_services.service.faults import FaultInjector
from lab_services.service.health import HealthState

log = logging.getLogger(__name__)


class BadRequest(BadInputError):
    """The request body is not what the endpoint takes; the message names the field."""


class SidecarHTTP:
    """A small threaded HTTP server next to the gRPC port, started and stopped with it."""

    def __init__(
        self,
        health: HealthState,
        faults: FaultInjector,
        registry: CollectorRegistry,
        state: Callable[[], dict[str, Any]],
        host: str | None = None,
        port: int = 0,
        routes: dict[str, Callable[[], dict[str, Any]]] | None = None,
        reset: Callable[[], dict[str, Any]] | None = None,
    ):
        self.host = kernel_host() if host is None else require_lab_host(host)
        self.requested_port = port
        self.health = health
        self.faults = faults
        self.registry = registry
        self.state = state
        self.routes = dict(routes or {})  # more GET paths answering JSON, e.g. /admin/settings
        self.reset = reset
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the side HTTP port is not started; call start() first")
        return self._server.server_address[1]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Bind and serve in a daemon thread; PortInUseError if the requested port is taken."""
        handler = type("Handler", (_Handler,), {"sidecar": self})
        try:
            self._server = ThreadingHTTPServer((self.host, self.requested_port), handler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUseError(
                f"port {self.requested_port} on {self.host} is in use by {holder(self.requested_port)}; "
                "pass --http-port 0 for a free one"
            ) from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"sidecar-http-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, in milliseconds: serve_forever looks at its stop flag only when its select wakes (every 0.5 s
        idle; polling every 50 ms instead cost 0.12 % of a core per idle instance), so a connection wakes it."""
        if self._server is not None:
            stopper = threading.Thread(target=self._server.shutdown, name="sidecar-http-stop", daemon=True)
            stopper.start()
            while stopper.is_alive():
                with contextlib.suppress(OSError), socket.create_connection(self._server.server_address[:2], 0.2):
                    pass
                stopper.join(0.05)
            self._server.server_close()
            self._server = None


class _Handler(BaseHTTPRequestHandler):
    sidecar: SidecarHTTP

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/health":
            service = parse_qs(url.query).get("service", [""])[0]
            try:
                status = self.sidecar.health.get(service)
            except KeyError:
                self._send(HTTPStatus.NOT_FOUND, f"unknown service {service!r}\n")
                return
            self._send(HTTPStatus.OK if status == "SERVING" else HTTPStatus.SERVICE_UNAVAILABLE, status + "\n")
        elif url.path == "/metrics":
            self._send(HTTPStatus.OK, generate_latest(self.sidecar.registry), CONTENT_TYPE_LATEST)
        elif url.path == "/admin/state":
            self._json(HTTPStatus.OK, self.sidecar.state())
        elif url.path in self.sidecar.routes:
            self._json(HTTPStatus.OK, self.sidecar.routes[url.path]())
        else:
            self._send(HTTPStatus.NOT_FOUND, "not found; try /health, /metrics or /admin/state\n")

    def do_POST(self) -> None:
        actions = {"/admin/health": self._set_health, "/admin/faults": self._set_faults, "/admin/reset": self._reset}
        action = actions.get(urlsplit(self.path).path)
        if action is None:
            self._send(HTTPStatus.NOT_FOUND, f"not found; POST to {' or '.join(actions)}\n")
            return
        try:
            self._json(HTTPStatus.OK, action(self._body()))
        except ValueError as exc:  # BadRequest, InvalidFault and HealthState's errors all name the field
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})

    def _set_health(self, body: dict[str, Any]) -> dict[str, Any]:
        _only_fields(body, ("status", "service"), required=("status",))
        service = body.get("service", "")
        if not isinstance(service, str):
            raise BadRequest(f"service: must be a string, got {service!r}")
        self.sidecar.health.set(body["status"], service)
        log.info("health of %r set to %s through the admin port", service, body["status"])
        return {"health": self.sidecar.health.snapshot()}

    def _set_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        _only_fields(body, ("latency_ms", "error_rate"))
        faults = self.sidecar.faults.set(**body)
        log.info("faults set to %s through the admin port", faults)
        return {"faults": faults.as_dict()}

    def _reset(self, body: dict[str, Any]) -> dict[str, Any]:
        _only_fields(body, ())
        if self.sidecar.reset is None:
            raise BadRequest("reset: this side port was started without a reset action")
        done = self.sidecar.reset()
        log.info("reset through the admin port: %s", done)
        return done

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"body: not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise BadRequest(f"body: must be a JSON object, got {json.dumps(body)}")
        return body

    def _json(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload) + "\n", "application/json")

    def _send(self, status: HTTPStatus, body: str | bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        # Consul and Prometheus poll every second; keep their requests out of the service log.
        log.debug("%s %s", self.address_string(), format % args)


def _only_fields(body: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    for field in body:
        if field not in allowed:
            raise BadRequest(f"{field}: unknown field; expected {', '.join(allowed)}")
    for field in required:
        if field not in body:
            raise BadRequest(f"{field}: required")
