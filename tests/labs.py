"""Real lab servers for tests, always started and taken down through the runtime (never a second copy of it).

`local_lab` runs a local-runtime lab of any shape; `ConsulNode` and `EtcdNode` are views of one of its servers
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

from lab_services.core.addresses import etcd_endpoint
from lab_services.discovery import ConsulWatcher
from lab_services.runtime import Cluster, ClusterConfig, open_cluster, processes


@contextmanager
def local_lab(base: Path, **shape) -> Iterator[Cluster]:
    lab = open_cluster(base, "local")
    try:
        lab.launch(ClusterConfig(**shape))
        yield lab
    finally:
        lab.down()
    assert processes.live_records(base) == [], "the lab left processes behind after down"


@contextmanager
def consul_watcher(lab: Cluster, ids: list[str]) -> Iterator[ConsulWatcher]:
    """A started watcher on the lab's Consul that already lists exactly `ids`."""
    watcher = ConsulWatcher("user", lab.status().consul.http, wait="5s").start()
    try:
        assert watcher.wait_for(lambda xs: [i.id for i in xs] == ids, 15), f"the watcher never listed {ids}"
        yield watcher
    finally:
        watcher.stop()


class LabNode:
    """One server of a running local lab: stop it, start it again (same ports, same data), read its log."""

    def __init__(self, lab: Cluster, name: str):
        self.lab = lab
        self.name = name
        self.spec = next(p for p in lab.status().processes if p.name == name)

    def stop(self) -> None:
        self.lab.stop(self.name)

    def start(self) -> None:
        self.lab.start(self.name)

    def tail(self, lines: int = 20) -> str:
        path = Path(self.spec.log_file)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


class ConsulNode(LabNode):
    """A Consul server of the lab, read through its agent's HTTP API as the registrar tests need it."""

    @property
    def http(self) -> str:
        return self.spec.address("http")

    @property
    def data_dir(self) -> Path:
        return self.lab.base / "cluster" / self.name / "data"

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
        return self.spec.address("client")

    def client(self):
        host, port = etcd_endpoint(self.endpoint)
        return pyetcd.client(host, port, timeout=2)
