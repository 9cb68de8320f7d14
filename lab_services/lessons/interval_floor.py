"""What Consul 1.8 does with a check interval below its 1 s minimum: it accepts it, runs it every second, and says so
only in the agent's log. Lesson 09 shows all three, so "Consul refuses it" (what the lab once taught) cannot return.

    floor = interval_floor(cluster, interval="200ms", seconds=4)
    floor["runs"], floor["effective_interval"], floor["agent_log"]
"""

from __future__ import annotations

import itertools
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import consul

from lab_services.core.addresses import consul_http_address
from lab_services.core.durations import parse_duration
from lab_services.core.network import kernel_host
from lab_services.lessons.agent_log import AgentLog
from lab_services.registry.spec import CheckSpec, ConsulRaises
from lab_services.runtime import Cluster

WARNING_TEXT = "check has interval below minimum"


class _CountingServer(ThreadingHTTPServer):
    """An HTTP endpoint on kernel_host() (where Consul's HTTP check reaches it) that answers 200 and notes when each
    GET came: the check's runs, counted at the target."""

    def __init__(self) -> None:
        self.hits: list[float] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler) -> None:
                self.hits.append(time.monotonic())
                handler.send_response(200)
                handler.end_headers()
                handler.wfile.write(b"ok")

            def log_message(handler, *args: Any) -> None:
                return None

        super().__init__((kernel_host(), 0), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


def interval_floor(cluster: Cluster, interval: str = "200ms", seconds: float = 4.0) -> dict[str, Any]:
    """Register an HTTP check with `interval` against a counting endpoint, let it run for `seconds`, and report how
    often Consul really ran it, plus the agent's log line and the warning the lab's own validation gives."""
    if parse_duration(interval) >= 1.0:
        raise ValueError(f"invalid argument: interval: {interval!r} is not below Consul's 1s minimum; try '200ms'")
    consul_http = cluster.status().consul.http[0]
    log = AgentLog(cluster, consul_http).start()
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always", ConsulRaises)
        CheckSpec("http", interval=interval).validate("check", http_port=1)
    server = _CountingServer()
    threading.Thread(target=server.serve_forever, name="interval-floor", daemon=True).start()
    host, port = consul_http_address(consul_http)
    agent = consul.Consul(host=host, port=port).agent
    check_id = f"interval-floor-{server.server_address[1]}"
    try:
        agent.check.register(check_id, consul.Check.http(server.url, interval, timeout="1s"))
        time.sleep(seconds)
        runs = list(server.hits)
    finally:
        agent.check.deregister(check_id)
        server.shutdown()
        server.server_close()
    line = next((entry for entry in log.lines(WARNING_TEXT) if check_id in entry), None)
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    return {
        "asked": interval,
        "seconds": seconds,
        "runs": len(runs),
        "effective_interval": round(sum(gaps) / len(gaps), 2) if gaps else None,
        "agent_log": line,
        "lab_warning": str(raised[0].message) if raised else None,
    }
