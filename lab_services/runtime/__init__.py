"""The lab's runtimes: processes, binaries and clusters behind one Cluster interface (entry points in `lab.py`).

Service processes never import this package (they need only `core`), so it loads its names directly.
"""

from __future__ import annotations

from lab_services.runtime.cluster import Cluster, NotReadyError
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.lab import backend_name, connect, ensure_cluster
from lab_services.runtime.supervised import LabNotRunningError, SupervisedCluster

__all__ = [
    "Cluster",
    "ClusterConfig",
    "LabNotRunningError",
    "NotReadyError",
    "SupervisedCluster",
    "backend_name",
    "connect",
    "ensure_cluster",
]
