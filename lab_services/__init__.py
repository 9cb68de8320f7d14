"""Service Discovery Lab: the package the lessons drive (cluster runtime, user service, registries, discovery).

The runtime is imported on first use, not here: every user-service process imports this package too,
and should not pay for the cluster runtime's imports in start-up time and memory.
"""
from __future__ import annotations

from typing import Any

__all__ = ["ClusterConfig", "connect", "ensure_cluster"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lab_services import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'lab_services' has no attribute {name!r}")
