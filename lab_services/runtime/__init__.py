"""The lab's runtimes behind one port: `Cluster` (cluster.py), with a local and a compose adapter (local/, compose/).

Callers use `open_cluster`, `connect` or `ensure_cluster` and the `Cluster` they return, never an adapter directly.
Service processes never import this package (they need only `core`), so it loads its names directly.
"""

from __future__ import annotations

from lab_services.runtime.backends import BACKENDS, backend_name, connect, ensure_cluster, open_cluster
from lab_services.runtime.cluster import Action, Auxiliary, Cluster, NotReadyError, UnknownProcessError
from lab_services.runtime.config import ClusterConfig

__all__ = [
    "BACKENDS",
    "Action",
    "Auxiliary",
    "Cluster",
    "ClusterConfig",
    "NotReadyError",
    "UnknownProcessError",
    "backend_name",
    "connect",
    "ensure_cluster",
    "open_cluster",
]
