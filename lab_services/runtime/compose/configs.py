"""Write compose/consul/server.json and compose/prometheus/prometheus.yml from the local runtime's own generators.

One source for both runtimes: the Consul settings every server shares and the Prometheus scrape jobs come
from `nodes.consul.server_config()` and `nodes.prometheus.config()`. Run `python -m
lab_services.runtime.compose.configs` after changing either; tests/runtime/test_compose_files.py fails while the
committed copies differ from what this writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lab_services.core.paths import REPO_DIR
from lab_services.runtime.compose import topology
from lab_services.runtime.nodes import consul, prometheus

COMPOSE_DIR = REPO_DIR / "compose"


def rendered() -> dict[Path, str]:
    """Each generated file and its text (JSON, which is valid YAML for Prometheus)."""
    scrape = prometheus.config(
        topology.by_name(topology.consul_nodes()),
        topology.by_name(topology.etcd_nodes()),
        topology.SERVICE_NAME,
        etcd_targets=topology.ETCD_TARGETS,
        self_address=topology.by_name([topology.prometheus_node("")])[0].addr("http"),
    )
    return {
        COMPOSE_DIR / "consul" / "server.json": json.dumps(consul.server_config(), indent=2) + "\n",
        COMPOSE_DIR / "prometheus" / "prometheus.yml": json.dumps(scrape, indent=2) + "\n",
    }


def main() -> int:
    for path, text in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
