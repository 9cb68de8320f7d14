"""Each learner's Consul UI and Prometheus pages, opened from JupyterLab through jupyter-server-proxy.

Under JupyterHub a learner's JupyterLab lives under a prefix (`/user/alice/`), and jupyter-server-proxy serves a
named server under it (`/user/alice/consul/`), stripping the prefix before it forwards. Two things stand in the way
of simply pointing it at the lab:

* The lab's ports are not known when JupyterLab starts (lesson 00 starts the lab later, from a kernel), they follow
  the learner's LAB_PORT_OFFSET, and a lab "moves" a port whose familiar number was taken. jupyter-server-proxy's
  `port` is one number fixed at start-up.
* Consul 1.8.7's UI asks for absolute paths: its page loads `/ui/assets/...` and its JavaScript calls `GET /v1/...`
  (hashicorp/consul#9829, #10374; `ui_content_path` moves only the page, and only later Consuls have an API prefix
  for the UI). Behind the prefix those would go to the hub's root.

So each entry starts one small forwarding process (jupyter-server-proxy's `command`, on a Unix socket of its own, so
no port is taken and no other user can reach it), `python -m lab_services.classroom.proxy consul|prometheus`. For
every request it reads the running lab's published status (`open_cluster().status()`, a few milliseconds), so it
follows the lab's real ports, a lab started after JupyterLab, and a Consul server stopped by a drill (it asks
another one). It rewrites what Consul's UI sends so that every path carries the prefix jupyter-server-proxy names in
`X-Forwarded-Prefix`: in the page, `/ui/` (also URL-encoded inside the page's Ember configuration, whose `rootURL`
the router builds its links from), and in the JavaScript, each request template `GET /v1/...` (the only form in
which the 1.8.7 UI spells an API path: 57 of them, all rewritten). Redirects need nothing: jupyter-server-proxy
puts the prefix on a `Location` itself. Pages the lessons point at work in Chromium behind `/user/<name>/consul/`:
the services list, a service's instances and an instance's health checks, the nodes, key/value.
tests/classroom/test_proxy_lab.py opens each.

Prometheus needs no rewriting of its own pages, because Debian's build has none: its binary reads the classic UI's
templates from /usr/share/prometheus/web, which the lab's unpacked binary does not have (`/classic/graph` answers
500, `/targets` 404; docs/runtimes.md). Starting the lab's Prometheus with `--web.external-url` per learner is not
ours to do from here, and would not bring the pages back. So the Prometheus entry serves the lab's own views of it
at `/targets` and `/graph` (classroom/prometheus_views.py, built on `metrics.prometheus`, the same calls lesson 08
makes) and forwards everything else (`/api/v1/...`, `/metrics`, `/-/ready`) unchanged.

When there is no lab, or no Consul or Prometheus in it, the forwarder answers 503 with one line that says which
lab (its state directory) and the one command that starts it, instead of jupyter-server-proxy's bare 500 for a
refused connection.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import re
import socketserver
import sys
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler

from lab_services.classroom import prometheus_views
from lab_services.core.errors import LabError
from lab_services.core.stop_signals import block_stop_signals, wait_for_stop_signal
from lab_services.runtime import Cluster, open_cluster
from lab_services.runtime.status import ClusterStatus, ProcessStatus

log = logging.getLogger(__name__)

# JupyterLab's launcher groups the two entries under this heading.
LAUNCHER_CATEGORY = "Service Discovery Lab"
# Python and the lab's runtime take about a second to import on an idle machine; a busy CI machine needs more.
STARTUP_TIMEOUT = 30.0
# jupyter-server-proxy gives a proxied request 300 s, and Consul holds a blocking query up to its 5 min default
# wait (plus jitter), so a UI page watching for changes would end in a timeout; a shorter wait just returns sooner.
BLOCKING_WAIT = "60s"
# The forwarder's own wait for an upstream answer: a blocking query's wait and some.
UPSTREAM_TIMEOUT = 90.0
# Headers that belong to one hop, and the learner's Jupyter credentials, which are no business of Consul's.
DROPPED_REQUEST_HEADERS = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "accept-encoding",  # plain bodies, so they can be rewritten
    "cookie",
    "authorization",
}
DROPPED_RESPONSE_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}
# A prefix is pasted into pages and scripts, so it may hold only what a URL path holds and never a quote.
PREFIX_PATTERN = re.compile(r"/[A-Za-z0-9._~%@!$&()*+,;=:/-]*")
API_TEMPLATE = re.compile(rb"\b(GET|HEAD|PUT|POST|PATCH|DELETE) /v1/")


class UnavailableError(LabError, RuntimeError):
    """What a proxied page needs is not running: the message names the lab and the command that starts it."""


@dataclass(frozen=True)
class Reply:
    """An answer the forwarder makes itself (not one it forwards)."""

    status: int
    body: str
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


# -- jupyter-server-proxy's entries (the `jupyter_serverproxy_servers` entry points) -------------------------------


def consul() -> dict:
    """The learner's Consul UI at `<base_url>consul/ui/`."""
    return _entry("consul", "Consul UI", "ui/")


def prometheus() -> dict:
    """The learner's Prometheus targets and query pages at `<base_url>prometheus/`."""
    return _entry("prometheus", "Prometheus", "targets")


def _entry(name: str, title: str, page: str) -> dict:
    return {
        "command": [sys.executable, "-m", "lab_services.classroom.proxy", name, "--unix-socket", "{unix_socket}"],
        "unix_socket": True,
        "timeout": STARTUP_TIMEOUT,
        "new_browser_tab": True,
        "launcher_entry": {"title": title, "path_info": f"{name}/{page}", "category": LAUNCHER_CATEGORY},
    }


# -- where each request goes ---------------------------------------------------------------------------------------


def consul_address(status: ClusterStatus) -> str:
    """host:port of a running Consul server's HTTP API: the leader's if it runs, otherwise the first running one."""
    running = _running(status, "consul", "Consul server", "it was started with --consul-servers 0")
    running.sort(key=lambda p: p.name != status.consul.leader)
    return running[0].address("http")


def prometheus_address(status: ClusterStatus) -> str:
    """host:port of the lab's Prometheus."""
    return _running(status, "prometheus", "Prometheus", "it was started with --no-prometheus")[0].address("http")


def _running(status: ClusterStatus, kind: str, what: str, why_absent: str) -> list[ProcessStatus]:
    """The lab's running processes of `kind`; UnavailableError with the command that starts one if none runs."""
    found = status.processes_of(kind)
    if not found:
        raise UnavailableError(
            f"the lab in {status.state_dir} runs no {what} ({why_absent}); start it again with `discovery-lab down` "
            "and `discovery-lab up`"
        )
    running = [p for p in found.values() if p.state == "running"]
    if not running:
        states = ", ".join(f"{p.name} {p.state}" for p in found.values())
        raise UnavailableError(
            f"no {what} of the lab in {status.state_dir} is running ({states}); start one with "
            f"`discovery-lab start {next(iter(found))}`"
        )
    return running


# -- what Consul's UI needs rewritten ------------------------------------------------------------------------------


def prefixed_consul_ui(body: bytes, content_type: str, prefix: str) -> bytes:
    """Consul's UI page or script with every absolute path moved under `prefix` ("/user/alice/consul/")."""
    if prefix == "/":
        return body
    if content_type.startswith("text/html"):
        ui = f"{prefix}ui/"
        body = body.replace(b"%2Fui%2F", urllib.parse.quote(ui, safe="").encode())
        return re.sub(rb"(?<=[\"'])/ui/", ui.encode(), body)
    if "javascript" in content_type:
        return API_TEMPLATE.sub(rb"\1 " + prefix.encode() + rb"v1/", body)
    return body


def capped_wait(path: str) -> str:
    """A blocking query (`?index=`) without a `wait` gets BLOCKING_WAIT; any other path is left as it is."""
    parts = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    if "index" not in query or "wait" in query:
        return path
    return urllib.parse.urlunsplit(parts._replace(query=f"{parts.query}&wait={BLOCKING_WAIT}"))


@dataclass(frozen=True)
class Upstream:
    """One proxied server: where it is in the lab's status, how its answers are rewritten, which pages are ours."""

    name: str
    title: str
    address: Callable[[ClusterStatus], str]
    rewrite: Callable[[bytes, str, str], bytes] = lambda body, content_type, prefix: body
    path: Callable[[str], str] = lambda path: path
    pages: Callable[[str, str], str | None] = lambda path, address: None


UPSTREAMS = {
    "consul": Upstream("consul", "Consul UI", consul_address, prefixed_consul_ui, capped_wait),
    "prometheus": Upstream("prometheus", "Prometheus", prometheus_address, pages=prometheus_views.page),
}


def document(title: str, body: str) -> str:
    """A whole page around `body`, for the answers the forwarder makes itself."""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:1.5em} .error{color:#cf222e} nav{margin-bottom:1em}</style>"
        f"</head><body>{body}</body></html>"
    )


# -- the forwarding process ----------------------------------------------------------------------------------------


class Forwarder(BaseHTTPRequestHandler):
    """Answers one request from jupyter-server-proxy: forwards it to the lab, or says what is missing."""

    upstream: Upstream  # set on the subclass `serve` makes
    cluster: Cluster

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _handle(self) -> None:
        prefix = self.headers.get("X-Forwarded-Prefix", "/").rstrip("/") + "/"
        if not PREFIX_PATTERN.fullmatch(prefix):
            self._reply(Reply(400, f"the proxy prefix {prefix!r} is not a URL path", "text/plain; charset=utf-8"))
            return
        try:
            address = self.upstream.address(self.cluster.status())
        except LabError as err:
            self._reply(self._unavailable(err))
            return
        page = self.upstream.pages(self.path, address) if self.command in ("GET", "HEAD") else None
        if page is not None:
            self._reply(Reply(200, document(self.upstream.title, page)))
            return
        self._forward(address, prefix)

    def _unavailable(self, err: LabError) -> Reply:
        message = str(err)
        if "text/html" not in self.headers.get("Accept", ""):
            return Reply(503, message + "\n", "text/plain; charset=utf-8", {"Retry-After": "5"})
        page = (
            f"<h1>{escape(self.upstream.title)}: the lab is not there</h1><p>{escape(message)}.</p>"
            "<p>Run the command in a JupyterLab terminal (or run lesson 00), then reload this page.</p>"
        )
        return Reply(503, document(self.upstream.title, page), headers={"Retry-After": "5"})

    def _forward(self, address: str, prefix: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in DROPPED_REQUEST_HEADERS}
        headers = {k: v for k, v in headers.items() if not k.lower().startswith("x-forwarded")}
        host, port = address.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=UPSTREAM_TIMEOUT)
        try:
            connection.request(self.command, self.upstream.path(self.path), body=body, headers=headers)
            response = connection.getresponse()
            content = response.read()
        except OSError as err:
            self._reply(
                Reply(
                    502,
                    f"{self.upstream.name} at {address} did not answer {self.command} {self.path}: {err}; "
                    "`discovery-lab status` shows what runs\n",
                    "text/plain; charset=utf-8",
                )
            )
            return
        finally:
            connection.close()
        content_type = response.getheader("Content-Type", "")
        if not response.getheader("Content-Encoding"):
            content = self.upstream.rewrite(content, content_type, prefix)
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in DROPPED_RESPONSE_HEADERS:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    def _reply(self, reply: Reply) -> None:
        body = reply.body.encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def address_string(self) -> str:
        return "jupyter-server-proxy"  # a Unix socket's peer has no address

    def log_message(self, format: str, *args) -> None:
        log.debug("%s: " + format, self.upstream.name, *args)


class UnixForwardingServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """One thread per request: Consul's UI keeps several blocking queries open at once."""

    daemon_threads = True


def serve(name: str, socket_path: str) -> UnixForwardingServer:
    """A started forwarder for `name` ("consul" or "prometheus") listening on `socket_path`; `shutdown()` stops it."""
    handler = type(f"{name.title()}Forwarder", (Forwarder,), {"upstream": UPSTREAMS[name], "cluster": open_cluster()})
    server = UnixForwardingServer(socket_path, handler)
    threading.Thread(target=server.serve_forever, name=f"{name}-proxy", daemon=True).start()
    return server


def _exit_with_parent(parent: int) -> None:
    """Return on SIGTERM (jupyter-server-proxy stopping it) or when the JupyterLab that started this process is gone
    (a killed server says nothing). The serving thread is a daemon: the process ends with this function's caller,
    without waiting for requests in flight (CI once found a forwarder whose `shutdown()` never returned, orphaned).

    The stop signals are blocked (by `main`, before the serving thread starts) and taken here (core.stop_signals): a
    handler that set a threading.Event deadlocked once, run in the main thread while that thread held the Event's own
    lock inside `wait(1.0)`, leaving an orphaned forwarder behind."""
    # A forwarder started while its JupyterLab was already going away has init for a parent from the start.
    while parent != 1 and os.getppid() == parent:
        if wait_for_stop_signal(1.0) is not None:
            return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lab_services.classroom.proxy", description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(UPSTREAMS))
    parser.add_argument("--unix-socket", required=True, help="the socket jupyter-server-proxy forwards to")
    args = parser.parse_args(argv)
    block_stop_signals()  # the serving thread inherits the mask
    server = serve(args.name, args.unix_socket)
    log.info(
        "forwarding %s on %s to the lab in %s", args.name, args.unix_socket, server.RequestHandlerClass.cluster.location
    )
    try:
        _exit_with_parent(os.getppid())
    finally:
        server.server_close()
        os.unlink(args.unix_socket)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    main()
    # Leave now: a client library the lab's status loads may hold a non-daemon thread that would keep an orphaned
    # forwarder alive forever (CI found one, an hour after its JupyterLab was gone).
    logging.shutdown()
    os._exit(0)
