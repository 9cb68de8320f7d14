"""Read what a lab Consul agent logs while a lesson does something.

Some of Consul's decisions show nowhere else. Consul 1.8 raises a DeregisterCriticalServiceAfter below one
minute to one minute, but the check it stores on disk and its HTTP API still say "30s": only the agent's
warning `check has deregister interval below minimum` tells. This follows the agent's own log (the file
`discovery-lab status` lists, or the container's log on the compose runtime: `Cluster.log_text`) from the moment
the block starts:

    with lab.AgentLog(cluster) as log:
        ...register...
    log.wait_for("deregister interval below minimum")
"""

from __future__ import annotations

from lab_services.core.addresses import consul_http_address
from lab_services.core.errors import BadInputError
from lab_services.core.wait import wait_until
from lab_services.runtime import Cluster


class AgentLog:
    """The lines the Consul agent at `consul_http` (default: the first one lessons talk to) logs after `start()`."""

    def __init__(self, cluster: Cluster, consul_http: str | None = None):
        status = cluster.status()
        http = consul_http or status.consul.http[0]
        _, port = consul_http_address(http)
        agents = [p for p in status.processes_of("consul").values() if p.ports.get("http") == port]
        if not agents:
            raise BadInputError(
                f"invalid argument: consul_http: {http} is not the HTTP address of a Consul agent of this lab "
                f"(its agents: {', '.join(status.consul.http)})"
            )
        self.cluster = cluster
        self.name = agents[0].name
        self.offset = 0

    def start(self) -> AgentLog:
        """Remember where the log ends now: only what the agent writes from here on counts."""
        self.offset = len(self.cluster.log_text(self.name))
        return self

    def __enter__(self) -> AgentLog:
        return self.start()

    def __exit__(self, *_: object) -> None:
        return None

    def lines(self, containing: str = "") -> list[str]:
        """The lines logged since `start()` that contain `containing` (all of them when empty)."""
        text = self.cluster.log_text(self.name)[self.offset :]
        return [line.strip() for line in text.splitlines() if containing in line]

    def wait_for(self, containing: str, timeout: float = 5.0) -> list[str]:
        """The lines containing `containing`, waiting up to `timeout` s for the first (the agent logs after it
        answers)."""
        wait_until(
            lambda: self.lines(containing),
            timeout,
            f"{self.name} to log {containing!r}",
            seen=lambda: f"{len(self.lines())} other lines since start",
        )
        return self.lines(containing)
