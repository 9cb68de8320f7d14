"""Pick the runtime (`LAB_BACKEND`) and get a running lab cluster, starting one only when none fits."""
from __future__ import annotations

import os
from pathlib import Path

from lab_services.runtime.cluster import Cluster
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.supervised import LabNotRunningError, SupervisedCluster

BACKENDS = ("local", "compose")


def backend_name(explicit: str | None = None) -> str:
    name = (explicit or os.environ.get("LAB_BACKEND") or "local").strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"invalid argument: LAB_BACKEND: {name!r}; use one of {', '.join(BACKENDS)}")
    if name == "compose":
        raise NotImplementedError(
            "the compose runtime is not built yet (see compose/README.md); unset LAB_BACKEND to use the local runtime"
        )
    return name


def connect(base: Path | None = None, backend: str | None = None) -> SupervisedCluster:
    """The running lab in this state directory; raises LabNotRunningError when there is none."""
    backend_name(backend)
    cluster = SupervisedCluster(base)
    if not cluster.running():
        raise LabNotRunningError(f"no lab is running in {cluster.base}; start one with `discovery-lab up`")
    return cluster


def ensure_cluster(base: Path | None = None, backend: str | None = None, **shape) -> SupervisedCluster:
    """Reuse the running lab if it has at least the asked-for shape; otherwise (re)start it.

    A lab started from a notebook is owned by that kernel: when the kernel dies, the lab goes with it.
    A lab started with `discovery-lab up` (as `make lab` does) has no owner and runs until `down`.
    """
    backend_name(backend)
    wanted = ClusterConfig(**shape).validate()
    cluster = SupervisedCluster(base)
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
        instance_addresses="distinct" if "distinct" in (running.instance_addresses, wanted.instance_addresses) else "shared",
    )
