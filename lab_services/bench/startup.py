"""Cold start of the full lab on either runtime: seconds until every service passes in Consul, until Prometheus scraped all, and RSS."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from lab_services import prometheus
from lab_services.runtime.cluster import Cluster, ClusterConfig
from lab_services.runtime.local import LocalCluster

FULL = ClusterConfig(consul_servers=3, etcd_members=3, services=3)


def total_rss_mb(pids: list[int]) -> float:
    """Resident memory of the given processes and all their descendants, in MiB."""
    total = 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                total += p.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def one_run(config: ClusterConfig, backend: str = "local") -> dict[str, float]:
    """One cold start. On the compose runtime the containers' main pids (docker-init) and their children are
    measured, and its data goes before and after each run, so every run starts from nothing as the local
    one does; its addresses are fixed, so a running compose lab must be stopped first."""
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        cluster: Cluster
        if backend == "compose":
            from lab_services.runtime.compose.cluster import ComposeCluster

            cluster = ComposeCluster(config, base=Path(tmp))
            if cluster.running():
                raise RuntimeError("a compose lab is running on the benchmark's addresses; stop it first with "
                                   "`discovery-lab --backend compose down`")
            cluster.down(volumes=True)
        else:
            cluster = LocalCluster(config, base=Path(tmp))
        start = time.monotonic()
        try:
            status = cluster.up()
            to_passing = time.monotonic() - start
            prometheus.wait_for_targets(status["prometheus"]["url"], "lab-services", config.services, timeout=60)
            to_scraped = time.monotonic() - start
            rss = total_rss_mb([p["pid"] for p in status["processes"] if p["pid"]])
        finally:
            cluster.down(**({"volumes": True} if backend == "compose" else {}))
    return {"seconds_to_passing": to_passing, "seconds_to_scraped": to_scraped, "rss_mb": rss}


def run(runs: int = 3, config: ClusterConfig = FULL, backend: str = "local") -> dict[str, Any]:
    results = [one_run(config, backend) for _ in range(runs)]
    passing = [r["seconds_to_passing"] for r in results]
    scraped = [r["seconds_to_scraped"] for r in results]
    return {
        "benchmark": "startup",
        "backend": backend,
        "runs": runs,
        "topology": config.to_dict(),
        "median_seconds_to_passing": round(statistics.median(passing), 3),
        "max_seconds_to_passing": round(max(passing), 3),
        "median_seconds_to_scraped": round(statistics.median(scraped), 3),
        "total_rss_mb": round(statistics.median(r["rss_mb"] for r in results), 1),
        "samples": [{k: round(v, 3) for k, v in r.items()} for r in results],
    }


def describe(result: dict[str, Any]) -> str:
    return (
        f"{result['backend']} runtime: cold start of {result['topology']['consul_servers']} Consul servers, {result['topology']['etcd_members']} etcd "
        f"members, Prometheus and {result['topology']['services']} services, {result['runs']} runs:\n"
        f"  all services passing in Consul: median {result['median_seconds_to_passing']} s, max {result['max_seconds_to_passing']} s (target <= 3 s)\n"
        f"  every service scraped by Prometheus: median {result['median_seconds_to_scraped']} s (target <= 7 s)\n"
        f"  resident memory of the stack: {result['total_rss_mb']} MB (target <= 600 MB)"
    )
