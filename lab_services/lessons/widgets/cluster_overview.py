"""ClusterOverview: the lab's nodes at a glance (Consul servers, etcd members, Prometheus, services), leaders marked."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import ipywidgets as widgets

from lab_services.core.table import html_table
from lab_services.lessons.web_links import consul_ui
from lab_services.runtime.cluster import Cluster
from lab_services.runtime.status import ClusterStatus

COLUMNS = ["role", "name", "address", "pid", "state", "leader", "version"]
ROLES = {"consul": "Consul server", "etcd": "etcd member", "prometheus": "Prometheus", "service": "user service"}


class ClusterOverview:
    """One table row per lab process; `refresh()` (or the Refresh button) asks the cluster again.

    overview = ClusterOverview(cluster)
    display(overview.widget)
    overview.rows          # the same table as plain dicts
    """

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.rows: list[dict[str, Any]] = []
        self.refresh_button = widgets.Button(
            description="Refresh", icon="refresh", tooltip="ask the cluster for its status again"
        )
        self.summary = widgets.HTML()
        self.table = widgets.HTML()
        self.refresh_button.on_click(lambda _: self.refresh())
        self.widget = widgets.VBox([widgets.HBox([self.refresh_button, self.summary]), self.table])
        self.refresh()

    def refresh(self) -> list[dict[str, Any]]:
        """Read `cluster.status()` and redraw; returns the rows."""
        status = self.cluster.status()
        self.rows = overview_rows(status)
        self.table.value = html_table(
            self.rows, COLUMNS + (["container"] if any("container" in r for r in self.rows) else [])
        )
        self.summary.value = summary_html(status, self.rows)
        return self.rows


def summary_html(status: ClusterStatus, rows: list[dict[str, Any]]) -> str:
    """One line: how many processes run, who leads Consul and etcd, and a link to the Consul UI."""
    consul, etcd = status.consul, status.etcd
    running = sum(r["state"] == "running" for r in rows)
    return (
        f"{running} of {len(rows)} processes running &nbsp;·&nbsp; Consul leader: <b>{consul.leader or 'none'}</b>"
        f" &nbsp;·&nbsp; etcd leader: <b>{etcd.leader or 'none'}</b>"
        + (f" &nbsp;·&nbsp; <a href='{consul_ui(status)}' target='_blank'>Consul UI</a>" if consul.ui else "")
    )


def overview_rows(status: ClusterStatus) -> list[dict[str, Any]]:
    """Rows of the overview table from a `status()`: each process with its address, state, leadership, version."""
    versions = {name: found.get("version") or "missing" for name, found in status.binaries.items()}
    try:
        versions["service"] = metadata.version("service-discovery-lab")
    except metadata.PackageNotFoundError:
        versions["service"] = "source tree"
    leaders = {status.consul.leader, status.etcd.leader} - {None}
    services = {s.id: s for s in status.services}
    rows = []
    for proc in status.processes:
        kind, ports = proc.kind, proc.ports
        port = (
            ports.get("http") if kind in ("consul", "prometheus") else ports.get("client") if kind == "etcd" else None
        )
        address = services[proc.name].address if proc.name in services else (f"{proc.host}:{port}" if port else "-")
        rows.append(
            {
                "role": ROLES.get(kind, kind),
                "name": proc.name,
                "address": address,
                "pid": proc.pid,
                "state": proc.state,
                "leader": "★ leader" if proc.name in leaders else "",
                "version": versions.get(kind, "-"),
                # On the compose runtime each node is a container: name it, as `docker ps` does.
                **({"container": proc.container} if proc.container else {}),
            }
        )
    return rows
