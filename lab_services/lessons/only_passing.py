"""A second Consul agent for lesson 03, with `dns_config { only_passing = true }`, to show what that setting changes.

The lab's servers answer DNS with warning instances included (Consul's default). This starts a small Consul
*client* agent on free loopback ports, joined to the lab's servers, whose DNS leaves them out, so the lesson
can ask both the same question. The runtime starts it beside the lab (`Cluster.start_auxiliary`), and it stops
with `stop()` (or the `with` block), leaving gracefully so the lab's member list shows it as left.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from lab_services.core.errors import BadInputError
from lab_services.core.http import http_json
from lab_services.core.ports import PortAllocator
from lab_services.core.wait import wait_until
from lab_services.runtime import Auxiliary, Cluster


class OnlyPassingAgent:
    """A Consul client agent joined to the lab whose DNS answers only passing instances; `dns` is its address."""

    def __init__(self, cluster: Cluster, name: str = "only-passing"):
        self.cluster = cluster
        servers = cluster.status().processes_of("consul").values()
        self.join = [p.address("serf_lan") for p in servers if "serf_lan" in p.ports]
        if not self.join:
            raise BadInputError(
                "invalid argument: cluster: the lab runs no Consul server to join; start it with consul_servers=1 or 3"
            )
        self.name = name
        self.workdir = Path(tempfile.mkdtemp(prefix="lab-only-passing-"))
        # Its own address beside the lab (the kernel's on the local runtime, one on the stack's network on compose).
        self.host = cluster.auxiliary_host()
        ports = PortAllocator()
        self.ports = {name: ports.free() for name in ("http", "dns", "serf_lan", "serf_wan", "server")}
        self.child: Any = None

    @property
    def dns(self) -> str:
        return f"{self.host}:{self.ports['dns']}"

    @property
    def http(self) -> str:
        return f"{self.host}:{self.ports['http']}"

    def args(self) -> list[str]:
        """The agent's command line: flags only, so it runs as well in a container that cannot see this machine's files.
        The one setting this agent exists for is only_passing; the rest matches the lab's servers (no DNS caching)."""
        return [
            f"-node={self.name}",
            "-datacenter=lab",
            f"-data-dir={self.workdir / 'data'}",
            f"-bind={self.host}",
            f"-client={self.host}",
            f"-advertise={self.host}",
            *(f"-{name.replace('_', '-')}-port={port}" for name, port in self.ports.items()),
            *(f"-retry-join={address}" for address in self.join),
            "-retry-interval=1s",
            "-hcl=leave_on_terminate = true",
            "-hcl=disable_update_check = true",
            "-hcl=ports { grpc = -1 }",
            '-hcl=dns_config { only_passing = true allow_stale = true node_ttl = "0s" '
            'service_ttl { "*" = "0s" } udp_answer_limit = 64 }',
        ]

    def start(self, timeout: float = 20.0) -> OnlyPassingAgent:
        """Start the agent and wait until it has joined the lab and its catalog answers."""
        self.child = self.cluster.start_auxiliary(Auxiliary.CONSUL_AGENT, self.name, self.args(), self.host)
        try:
            wait_until(
                lambda: http_json(f"http://{self.http}/v1/catalog/services"),
                timeout,
                f"the {self.name} agent to join the lab",
                seen=lambda: self.child.tail(5) if self.child else "",
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Leave the cluster (SIGTERM: leave_on_terminate) and remove the agent's files."""
        if self.child is not None:
            self.child.stop()
            self.child = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> OnlyPassingAgent:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
