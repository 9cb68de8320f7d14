"""Service Discovery Lab: the package the lessons drive (cluster runtime, user service, registries, discovery)."""
from __future__ import annotations

from lab_services.runtime import ClusterConfig, connect, ensure_cluster

__all__ = ["ClusterConfig", "connect", "ensure_cluster"]
