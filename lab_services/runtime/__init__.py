"""The lab's runtimes: processes, ports, binaries and clusters (see `lab.py` for the entry points).

Names are loaded on first use: user-service processes import `lab_services.runtime.ports` and must not
pay for the whole cluster runtime when they start.
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Cluster": "lab_services.runtime.cluster",
    "ClusterConfig": "lab_services.runtime.cluster",
    "LabNotRunningError": "lab_services.runtime.supervised",
    "SupervisedCluster": "lab_services.runtime.supervised",
    "backend_name": "lab_services.runtime.lab",
    "connect": "lab_services.runtime.lab",
    "ensure_cluster": "lab_services.runtime.lab",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lab_services.runtime' has no attribute {name!r}")
