"""Links to the lab's web pages that open from the learner's browser: the servers' own addresses on a laptop, and
under a classroom hub the pages JupyterLab proxies for this learner (classroom/proxy.py), since the browser there
cannot reach the servers on the learner's loopback."""

from __future__ import annotations

import os

from lab_services.runtime.status import ClusterStatus

# Set by JupyterHub in every learner's server (and so in their kernels): e.g. /user/alice/.
HUB_PREFIX_ENV = "JUPYTERHUB_SERVICE_PREFIX"


def consul_ui(status: ClusterStatus) -> str:
    """The Consul UI ('' when the lab has no Consul)."""
    prefix = os.environ.get(HUB_PREFIX_ENV)
    if not status.consul.ui:
        return ""
    return f"{prefix}consul/ui/" if prefix else status.consul.ui


def prometheus_targets(status: ClusterStatus) -> str:
    """Prometheus's targets page ('' when the lab has no Prometheus)."""
    prefix = os.environ.get(HUB_PREFIX_ENV)
    if not status.prometheus.url:
        return ""
    return f"{prefix}prometheus/targets" if prefix else f"{status.prometheus.url}/targets"
