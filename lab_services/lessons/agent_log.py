"""Read what a lab Consul agent logs while a lesson does something.

Some of Consul's decisions show nowhere else. Consul 1.8 raises a DeregisterCriticalServiceAfter below one
minute to one minute, but the check it stores on disk and its HTTP API still say "30s": only the agent's
warning `check has deregister interval below minimum` tells. This follows the agent's own log (the file
`discovery-lab status` lists, or the container's log on the compose runtime) from the moment the block starts:

    with lab.AgentLog(cluster.status()) as log:
        ...register...
    log.wait_for("deregister interval below minimum")
"""

from __future__ import annotations

import time
from pathlib import Path

from lab_services.core.wait import wait_until
from lab_services.runtime.status import ClusterStatus


class AgentLog:
    """The lines the Consul agent at `consul_http` (default: the first one lessons talk to) logs after `start()`."""

    def __init__(self, status: ClusterStatus, consul_http: str | None = None):
        http = consul_http or status.consul.http[0]
        port = int(http.rsplit(":", 1)[1])
        agents = [p for p in status.processes_of("consul").values() if p.ports.get("http") == port]
        if not agents:
            raise ValueError(
                f"invalid argument: consul_http: {http} is not the HTTP address of a Consul agent of this lab "
                f"(its agents: {', '.join(status.consul.http)})"
            )
        self.name = agents[0].name
        self.container = agents[0].container
        self.path = Path(agents[0].log_file) if agents[0].log_file else None
        self.offset = 0
        self.since = 0.0

    def start(self) -> AgentLog:
        """Remember where the log ends now: only what the agent writes from here on counts."""
        if self.path is None:
            self.since = time.time()
        else:
            self.offset = self.path.stat().st_size
        return self

    def __enter__(self) -> AgentLog:
        return self.start()

    def __exit__(self, *_: object) -> None:
        return None

    def lines(self, containing: str = "") -> list[str]:
        """The lines logged since `start()` that contain `containing` (all of them when empty)."""
        if self.path is None:
            # Imported here: only the compose runtime's agents log to their containers, and docker is slow to import.
            from lab_services.runtime.compose import engine

            client = engine.client()
            try:
                text = client.containers.get(self.container).logs(since=self.since).decode("utf-8", "replace")
            finally:
                client.close()
        else:
            with self.path.open("rb") as log:
                log.seek(self.offset)
                text = log.read().decode("utf-8", "replace")
        return [line.strip() for line in text.splitlines() if containing in line]

    def wait_for(self, containing: str, timeout: float = 5.0) -> list[str]:
        """The lines containing `containing`, waiting up to `timeout` s for the first (the agent logs after it answers)."""
        wait_until(
            lambda: self.lines(containing),
            timeout,
            f"{self.name} to log {containing!r}",
            seen=lambda: f"{len(self.lines())} other lines since start",
        )
        return self.lines(containing)
