"""Pick the runtime (`LAB_BACKEND`) and get a running lab cluster, starting one only when none fits."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from lab_services.core.errors import BadInputError
from lab_services.runtime.cluster import Cluster
from lab_services.runtime.config import ClusterConfig

# Each name is a package under runtime/ exporting the same names (`NAME`, `open_cluster`).
BACKENDS = ("local", "compose")


def backend_name(explicit: str | None = None) -> str:
    name = (explicit or os.environ.get("LAB_BACKEND") or "local").strip().lower()
    if name not in BACKENDS:
        raise BadInputError(f"invalid argument: LAB_BACKEND: {name!r}; use one of {', '.join(BACKENDS)}")
    return name


def open_cluster(base: Path | None = None, backend: str | None = None) -> Cluster:
    """A handle on the chosen runtime's lab, running or not. The adapter loads only when chosen (the compose one
    loads the docker SDK)."""
    return importlib.import_module(f"lab_services.runtime.{backend_name(backend)}").open_cluster(base)


def connect(base: Path | None = None, backend: str | None = None) -> Cluster:
    """The running lab of the chosen runtime; raises NotRunningError (saying how to start one) when there is none."""
    cluster = open_cluster(base, backend)
    if not cluster.running():
        raise cluster.not_running()
    return cluster


def ensure_cluster(base: Path | None = None, backend: str | None = None, **shape) -> Cluster:
    """Reuse the running lab if it has at least the asked-for shape; otherwise (re)start it (`Cluster.ensure`)."""
    wanted = ClusterConfig(**shape).validate()
    cluster = open_cluster(base, backend)
    cluster.ensure(wanted, owner_pid=os.getpid())
    return cluster
