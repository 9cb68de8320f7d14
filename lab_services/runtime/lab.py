"""Pick the runtime (`LAB_BACKEND`) and get a running lab cluster, starting one only when none fits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.supervised import LabNotRunningError, SupervisedCluster

if TYPE_CHECKING:
    from lab_services.runtime.compose.cluster import ComposeCluster

BACKENDS = ("local", "compose")


def backend_name(explicit: str | None = None) -> str:
    name = (explicit or os.environ.get("LAB_BACKEND") or "local").strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"invalid argument: LAB_BACKEND: {name!r}; use one of {', '.join(BACKENDS)}")
    return name


def open_cluster(base: Path | None = None, backend: str | None = None) -> SupervisedCluster | ComposeCluster:
    """A handle on the chosen runtime's lab, running or not (`running()`, `launch()`, `down()` and the Cluster calls)."""
    if backend_name(backend) == "compose":
        from lab_services.runtime.compose.cluster import ComposeCluster  # the docker SDK loads only when asked for

        return ComposeCluster(base=base)
    return SupervisedCluster(base)


def connect(base: Path | None = None, backend: str | None = None) -> SupervisedCluster | ComposeCluster:
    """The running lab of the chosen runtime; raises LabNotRunningError when there is none."""
    cluster = open_cluster(base, backend)
    if not cluster.running():
        where = f"compose project {cluster.project}" if cluster.backend == "compose" else str(cluster.base)
        start = "discovery-lab --backend compose up" if cluster.backend == "compose" else "discovery-lab up"
        raise LabNotRunningError(f"no lab is running in {where}; start one with `{start}`")
    return cluster


def ensure_cluster(base: Path | None = None, backend: str | None = None, **shape) -> SupervisedCluster | ComposeCluster:
    """Reuse the running lab if it has at least the asked-for shape; otherwise (re)start it.

    A lab started from a notebook is owned by that kernel: when the kernel dies, the lab goes with it.
    A lab started with `discovery-lab up` (as `make lab` does) has no owner and runs until `down`.
    The compose runtime runs one shape, which serves every lesson (not `up --tls`), and its containers
    outlive the kernel (`discovery-lab --backend compose down` stops them).
    """
    wanted = ClusterConfig(**shape).validate()
    cluster = open_cluster(base, backend)
    if cluster.backend == "compose":
        cluster.launch(wanted)
        return cluster
    state = cluster.published()
    if state and "status" in state:
        running = ClusterConfig(**state["status"]["config"])
        if running.covers(wanted):
            return cluster
        print(f"restarting the lab: it runs {running}, this lesson needs {wanted}")
        owner = state.get("owner_pid")
        cluster.down()
        cluster.launch(_union(running, wanted), owner_pid=owner)
        return cluster
    cluster.launch(wanted, owner_pid=os.getpid())
    return cluster


def _union(running: ClusterConfig, wanted: ClusterConfig) -> ClusterConfig:
    """The smallest shape that serves both the lesson that started the lab and the one asking now."""
    return ClusterConfig(
        consul_servers=max(running.consul_servers, wanted.consul_servers),
        etcd_members=max(running.etcd_members, wanted.etcd_members),
        services=max(running.services, wanted.services),
        prometheus=running.prometheus or wanted.prometheus,
        service_name=wanted.service_name,
        registry=wanted.registry if running.registry == wanted.registry else "both",
        host=running.host,
        consul_http_port=running.consul_http_port,
        tls=wanted.tls,
        consul_clients=wanted.consul_clients,
        datacenters=max(running.datacenters, wanted.datacenters),
        instance_addresses="distinct"
        if "distinct" in (running.instance_addresses, wanted.instance_addresses)
        else "shared",
        config_store=wanted.config_store if wanted.config_store != "none" else running.config_store,
    )
