"""The compose runtime: the lab's Consul, etcd, Prometheus and user services as containers of one compose project.

`cluster.py` is the adapter callers get (`ComposeCluster`); `engine.py` talks to the Docker engine and the compose
CLI; `topology.py` says where each container listens; `configs.py` writes the compose copies of the configuration
the local runtime generates. Outside `runtime`, reach it only through `runtime.open_cluster()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab_services.runtime.compose.cluster import ComposeCluster

NAME = "compose"


def open_cluster(base: Path | None = None) -> ComposeCluster:
    """This runtime's lab (the compose project), running or not; loads the docker SDK only now."""
    from lab_services.runtime.compose.cluster import ComposeCluster

    return ComposeCluster(base=base)


__all__ = ["NAME", "open_cluster"]
