"""Real lab servers for tests, always started and taken down through the runtime (never a second copy of it).

`local_lab` runs a LocalCluster of any shape; `ConsulNode` and `EtcdNode` are views of one of its servers
with what the registry tests read (agent checks, a client, the log tail) and restart.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyetcd

from lab_services.discovery import ConsulWatcher
from lab_services.runtime import processes
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.local import LocalCluster


@contextmanager
def local_lab(base: Path, **shape) -> Iterator[LocalCluster]:
    lab = LocalCluster(ClusterConfig(**shape), base=base)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()
    assert processes.live_records(base) == [], "the lab left processes behind after down"


@contextmanager
def consul_watcher(lab: LocalCluster, ids: list[str]) -> Iterator[ConsulWatcher]:
    """A started watcher on the lab's Consul that already lists exactly `ids`."""
    watcher = ConsulWatcher("user", lab.status().consul.http, wait="5s").start()
    try:
        assert watcher.wait_for(lambda xs: [i.id for i in xs] == ids, 15), f"the watcher never listed {ids}"
        yield watcher
    finally:
        watcher.stop()


class LabNode:
    """One server of a running LocalCluster: stop it, start it again (same ports, same data), read its log."""

    def __init__(self, lab: LocalCluster, name: str):
        self.lab = lab
        self.name = name
        self.spec = lab.nodes[name]

    def stop(self) -> None:
        self.lab.stop(self.name)

    def start(self) -> None:
        self.lab.start(self.name)

    def tail(self) -> str:
        child = self.lab.children.get(self.name)
        return child.tail() if child is not None else f"({self.name} not running)"


class ConsulNode(LabNode):
    """A Consul server of the lab, read through its agent's HTTP API as the registrar tests need it."""

    @property
    def http(self) -> str:
        return self.spec.addr("http")

    @property
    def data_dir(self) -> Path:
        return self.lab.workdir / self.name / "data"

    def forget(self) -> None:
        """Stop the server and delete its data, so it starts again knowing nothing (as a lost disk would)."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def get(self, path: str) -> Any:
        """Decoded JSON from the HTTP API; None on 404 or when the agent does not answer."""
        try:
            with urllib.request.urlopen(f"http://{self.http}{path}", timeout=2) as resp:
                return json.load(resp)
        except (OSError, ValueError):
            return None

    def checks(self, service: str) -> dict[str, dict]:
        return {c["CheckID"]: c for c in self.get(f"/v1/health/checks/{service}") or []}

    def statuses(self, service: str) -> dict[str, str]:
        return {cid: c["Status"] for cid, c in self.checks(service).items()}

    def service(self, service_id: str) -> dict | None:
        return self.get(f"/v1/agent/service/{service_id}")


class EtcdNode(LabNode):
    """An etcd member of the lab: its client endpoint and a client that talks to this member only."""

    @property
    def endpoint(self) -> str:
        return self.spec.addr("client")

    def client(self):
        host, port = self.endpoint.split(":")
        return pyetcd.client(host, int(port), timeout=2)
