"""Real Consul agents and etcd members on free loopback ports for integration tests, and a poll helper that shows their logs."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyetcd
import pytest

from lab_services.runtime.binaries import find_binary
from lab_services.core.ports import PortAllocator
from lab_services.runtime.processes import spawn


def free_ports(count: int) -> list[int]:
    ports = PortAllocator()
    return [ports.free() for _ in range(count)]


class ConsulAgent:
    """A `-dev` agent on free loopback ports; `data_dir` makes it persist its local checks (so tests can read them)."""

    def __init__(self, base: Path, name: str, data_dir: Path | None = None):
        self.base = base
        self.name = name
        self.data_dir = data_dir
        self.http_port, self.dns_port, self.lan, self.wan, self.server = free_ports(5)
        self.http = f"127.0.0.1:{self.http_port}"
        self.child = None

    def start(self) -> "ConsulAgent":
        argv = [
            str(find_binary("consul")), "agent", "-dev", "-node", self.name,
            "-bind", "127.0.0.1", "-client", "127.0.0.1",
            "-http-port", str(self.http_port), "-dns-port", str(self.dns_port),
            "-serf-lan-port", str(self.lan), "-serf-wan-port", str(self.wan),
            "-server-port", str(self.server), "-grpc-port", "-1",
        ]
        if self.data_dir:
            argv += ["-data-dir", str(self.data_dir)]
        self.child = spawn(self.name, argv, log_path=self.base / "logs" / f"{self.name}.log", base=self.base)
        wait_for(lambda: self.get("/v1/status/leader") not in (None, ""), 15, "a Consul leader", self)
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None

    def get(self, path: str):
        """Decoded JSON from the HTTP API; None on 404 or when the agent does not answer."""
        try:
            with urllib.request.urlopen(f"http://{self.http}{path}", timeout=2) as resp:
                return json.load(resp)
        except (urllib.error.URLError, ConnectionError, OSError, ValueError):
            return None

    def checks(self, service: str) -> dict[str, dict]:
        return {c["CheckID"]: c for c in self.get(f"/v1/health/checks/{service}") or []}

    def statuses(self, service: str) -> dict[str, str]:
        return {cid: c["Status"] for cid, c in self.checks(service).items()}

    def service(self, service_id: str):
        return self.get(f"/v1/agent/service/{service_id}")

    def tail(self) -> str:
        return self.child.tail() if self.child else "(agent not running)"


def wait_for(condition, timeout: float, what: str, server: "ConsulAgent | EtcdMember | None" = None):
    """Poll `condition` until truthy and return its value; on timeout fail saying what, with the server's log tail."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            log = f"\n--- {server.name} log tail ---\n{server.tail()}" if server else ""
            pytest.fail(f"timed out after {timeout}s waiting for {what}{log}")
        time.sleep(0.05)


class EtcdMember:
    """One etcd member on free loopback ports; `cluster` lists every member's peer URL for a multi-member cluster."""

    def __init__(self, base: Path, name: str):
        self.base = base
        self.name = name
        self.client_port, self.peer_port = free_ports(2)
        self.endpoint = f"127.0.0.1:{self.client_port}"
        self.peer_url = f"http://127.0.0.1:{self.peer_port}"
        self.data_dir = base / f"{name}.data"
        self.cluster = f"{name}={self.peer_url}"
        self.child = None

    def start(self, wait: bool = True) -> "EtcdMember":
        url = f"http://{self.endpoint}"
        argv = [
            str(find_binary("etcd")), "--name", self.name, "--data-dir", str(self.data_dir),
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.cluster, "--initial-cluster-token", f"registry-tests-{self.base.name}",
        ]
        self.child = spawn(self.name, argv, log_path=self.base / "logs" / f"{self.name}.log", base=self.base)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        wait_for(self.healthy, 20, f"etcd {self.name} healthy", self)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.endpoint}/health", timeout=1) as resp:
                return json.load(resp).get("health") == "true"
        except (urllib.error.URLError, ConnectionError, OSError, ValueError):
            return False

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None

    def client(self):
        host, port = self.endpoint.split(":")
        return pyetcd.client(host, int(port), timeout=2)

    def tail(self) -> str:
        return self.child.tail() if self.child else "(member not running)"


