"""The lab's Prometheus: scrapes every service it finds through Consul and through etcd (file_sd), plus Consul and
etcd themselves."""

from __future__ import annotations

import json
from pathlib import Path

from lab_services.core.http import http_get
from lab_services.core.ports import PortAllocator
from lab_services.runtime.nodes import NodeSpec

ETCD_TARGETS = "etcd-targets.json"


def config(
    consul: list[NodeSpec],
    etcd: list[NodeSpec],
    service_name: str,
    scrape_interval: str = "2s",
    etcd_targets: Path | None = None,
    self_address: str = "{self}",
) -> dict:
    """The scrape configuration; lesson 08 shows it. JSON is valid YAML, so no YAML library is needed.

    With `etcd_targets`, a second job reads the instances registered in etcd from that file, which
    `lab_services.runtime.file_sd.FileSDWriter` keeps current (Prometheus has no etcd discovery).
    """
    scrape = [{"job_name": "prometheus", "static_configs": [{"targets": [self_address]}]}]
    if consul:
        scrape.append(
            {
                "job_name": "lab-services",
                # refresh 1 s: the default 30 s made a cold start take 36 s to first scrape (docs/architecture.md).
                "consul_sd_configs": [
                    {"server": consul[0].addr("http"), "services": [service_name], "refresh_interval": "1s"}
                ],
                "relabel_configs": [
                    # The instance's own address, not its agent's: under compose each instance has its own.
                    {
                        "source_labels": [
                            "__meta_consul_service_address",
                            "__meta_consul_service_metadata_metrics_port",
                        ],
                        "regex": "(.+);(\\d+)",
                        "replacement": "$1:$2",
                        "target_label": "__address__",
                    },
                    {"source_labels": ["__meta_consul_service_id"], "target_label": "instance"},
                    {"source_labels": ["__meta_consul_service"], "target_label": "service"},
                    {"target_label": "registry", "replacement": "consul"},
                ],
            }
        )
        scrape.append(
            {
                "job_name": "consul",
                "metrics_path": "/v1/agent/metrics",
                "params": {"format": ["prometheus"]},
                "static_configs": [{"targets": [n.addr("http") for n in consul]}],
            }
        )
    if etcd_targets is not None:
        # The file is re-read on change (inotify) and every second; its groups carry instance, service and registry.
        scrape.append(
            {
                "job_name": "lab-services-etcd",
                "file_sd_configs": [{"files": [str(etcd_targets)], "refresh_interval": "1s"}],
            }
        )
    if etcd:
        scrape.append({"job_name": "etcd", "static_configs": [{"targets": [n.addr("client") for n in etcd]}]})
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": scrape,
    }


def plan(
    binary: Path,
    ports: PortAllocator,
    workdir: Path,
    consul: list[NodeSpec],
    etcd: list[NodeSpec],
    service_name: str,
    etcd_services: bool = False,
) -> NodeSpec:
    """With `etcd_services`, the config also has the file_sd job for etcd, starting from an empty target file."""
    node = NodeSpec("prometheus", "prometheus", [], {"http": ports.free(9090)}, host=ports.host)
    path = workdir / "prometheus" / "prometheus.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    etcd_targets = path.parent / ETCD_TARGETS if etcd_services else None
    if etcd_targets is not None:
        etcd_targets.write_text("[]")
    cfg = config(consul, etcd, service_name, etcd_targets=etcd_targets, self_address=node.addr("http"))
    path.write_text(json.dumps(cfg, indent=2))
    node.argv = [
        str(binary),
        f"--config.file={path}",
        f"--storage.tsdb.path={workdir / 'prometheus' / 'data'}",
        f"--web.listen-address={node.addr('http')}",
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=2h",
    ]
    node.info = {"url": f"http://{node.addr('http')}", "config": str(path), "etcd_targets": str(etcd_targets or "")}
    return node


def is_ready(node: NodeSpec) -> bool:
    return http_get(f"http://{node.addr('http')}/-/ready")[0] == 200
