"""The local runtime: real Consul, etcd, Prometheus and user-service processes on loopback, no Docker.

`cluster.py` is the adapter callers get (`LocalCluster`); `engine.py` is the process that runs the lab and takes
its requests; `group.py` starts, signals and stops the processes inside it; `topology.py` plans their ports and
flags. Outside `runtime`, reach it only through `runtime.open_cluster()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab_services.runtime.local.cluster import LocalCluster

NAME = "local"


def open_cluster(base: Path | None = None) -> LocalCluster:
    """This runtime's lab in state directory `base` (default: LAB_STATE_DIR or .lab), running or not. Imported here,
    not above: the engine runs as `python -m lab_services.runtime.local.engine`, and this package must not have
    loaded it first."""
    from lab_services.runtime.local.cluster import LocalCluster

    return LocalCluster(base)


__all__ = ["NAME", "open_cluster"]
