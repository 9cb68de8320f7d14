"""The lab's Prometheus: scrapes every service it finds through Consul, plus Consul and etcd themselves."""
from __future__ import annotations

import json
from pathlib import Path

from lab_services.runtime.nodes import NodeSpec
from lab_services.runtime.ports import PortAllocator
from lab_services.runtime.probe import http_get


def config(consul: list[NodeSpec], etcd: list[NodeSpec], service_name: str, scrape_interval: str = "2s") -> dict:
    """The scrape configuration; lesson 08 shows it. JSON is valid YAML, so no YAML library is needed."""
    scrape = [{"job_name": "prometheus", "static_configs": [{"targets": ["{self}"]}]}]
    if consul:
        scrape.append({
            "job_name": "lab-services",
            # refresh 1 s: the default 30 s made a cold start take 36 s to first scrape (DESIGN.md §4).
            "consul_sd_configs": [{"server": consul[0].addr("http"), "services": [service_name], "refresh_interval": "1s"}],
            "relabel_configs": [
                {"source_labels": ["__meta_consul_address", "__meta_consul_service_metadata_metrics_port"],
                 "regex": "(.+);(\\d+)", "replacement": "$1:$2", "target_label": "__address__"},
                {"source_labels": ["__meta_consul_service_id"], "target_label": "instance"},
                {"source_labels": ["__meta_consul_service"], "target_label": "service"},
            ],
        })
        scrape.append({
            "job_name": "consul",
            "metrics_path": "/v1/agent/metrics",
            "params": {"format": ["prometheus"]},
            "static_configs": [{"targets": [n.addr("http") for n in consul]}],
        })
    if etcd:
        scrape.append({"job_name": "etcd", "static_configs": [{"targets": [n.addr("client") for n in etcd]}]})
    return {"global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval}, "scrape_configs": scrape}


def plan(binary: Path, ports: PortAllocator, workdir: Path, consul: list[NodeSpec], etcd: list[NodeSpec],
         service_name: str) -> NodeSpec:
    node = NodeSpec("prometheus", "prometheus", [], {"http": ports.free(9090)}, host=ports.host)
    cfg = config(consul, etcd, service_name)
    cfg["scrape_configs"][0]["static_configs"][0]["targets"] = [node.addr("http")]
    path = workdir / "prometheus" / "prometheus.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg, indent=2))
    node.argv = [
        str(binary),
        f"--config.file={path}",
        f"--storage.tsdb.path={workdir / 'prometheus' / 'data'}",
        f"--web.listen-address={node.addr('http')}",
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=2h",
    ]
    node.info = {"url": f"http://{node.addr('http')}", "config": str(path)}
    return node


def is_ready(node: NodeSpec) -> bool:
    return http_get(f"http://{node.addr('http')}/-/ready")[0] == 200
