"""Cold start of the full lab on either runtime: seconds until every service passes in Consul and until Prometheus
has scraped them all, and the memory it takes."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from lab_services.core.errors import LabError
from lab_services.core.http import http_get
from lab_services.core.progress import OnStep
from lab_services.core.wait import wait_until
from lab_services.metrics import prometheus
from lab_services.runtime import open_cluster
from lab_services.runtime.config import ClusterConfig

FULL = ClusterConfig(consul_servers=3, etcd_members=3, services=3)


def rss_mb_by_process(pids: dict[str, int | None]) -> dict[str, float]:
    """Resident memory of each process with its descendants, in MiB, by name; a process two names reach (the local
    engine's children are the lab's servers) counts once, for the first name.

    Per process, so a memory target can be traced to what holds the memory (a server, or one service).
    """
    by_name: dict[str, float] = {}
    counted: set[int] = set()
    for name, pid in pids.items():
        if not pid:
            continue
        try:
            proc = psutil.Process(pid)
            tree = [p for p in [proc, *proc.children(recursive=True)] if p.pid not in counted]
            by_name[name] = sum(p.memory_info().rss for p in tree) / 2**20
            counted.update(p.pid for p in tree)
        except psutil.Error:
            continue
    return by_name


def one_run(config: ClusterConfig, backend: str = "local") -> dict[str, float]:
    """One cold start. On the compose runtime the containers' main pids (docker-init) and their children are
    measured, and its data goes before and after each run, so every run starts from nothing as the local
    one does; its addresses are fixed, so a running compose lab must be stopped first."""
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        cluster = open_cluster(Path(tmp), backend)
        if cluster.running():
            raise LabError(
                f"a lab is running in {cluster.location}, where the benchmark starts its own; stop it first with "
                f"`discovery-lab --backend {backend} down`"
            )
        cluster.down(volumes=True)
        start = time.monotonic()
        try:
            status = cluster.launch(config)
            to_passing = time.monotonic() - start
            # Lesson 00 is ready once every check passes and, where the runtime serves JupyterLab, it answers too.
            jupyter = cluster.notebook_server()
            if jupyter is not None:
                wait_until(lambda: http_get(jupyter.api_url)[0] == 200, 120, "JupyterLab to answer")
            to_lesson = time.monotonic() - start
            prometheus.wait_for_targets(status.prometheus.url, "lab-services", config.services, timeout=60)
            to_scraped = time.monotonic() - start
            # The servers and instances first, then what runs them (the local engine, compose's JupyterLab...).
            rss = rss_mb_by_process({**{p.name: p.pid for p in status.processes}, **cluster.support_pids()})
        finally:
            cluster.down(volumes=True)
    return {
        "seconds_to_passing": to_passing,
        "seconds_to_lesson_ready": to_lesson,
        "seconds_to_scraped": to_scraped,
        "rss_mb": sum(rss.values()),
        "rss_mb_by_process": rss,
    }


def run(
    runs: int = 3, config: ClusterConfig = FULL, backend: str = "local", progress: OnStep | None = None
) -> dict[str, Any]:
    """Cold starts of `config` on `backend`, one after another; per-process memory is the median of the runs.
    `progress(done, total, step)` hears each run start and the end."""
    results = []
    for n in range(runs):
        if progress is not None:
            progress(n, runs, f"startup ({backend}): cold start {n + 1} of {runs}")
        results.append(one_run(config, backend))
    if progress is not None:
        progress(runs, runs, "startup: done")
    passing = [r["seconds_to_passing"] for r in results]
    ready = [r["seconds_to_lesson_ready"] for r in results]
    scraped = [r["seconds_to_scraped"] for r in results]
    return {
        "benchmark": "startup",
        "backend": backend,
        "runs": runs,
        "topology": config.to_dict(),
        "median_seconds_to_passing": round(statistics.median(passing), 3),
        "max_seconds_to_passing": round(max(passing), 3),
        "median_seconds_to_lesson_ready": round(statistics.median(ready), 3),
        "median_seconds_to_scraped": round(statistics.median(scraped), 3),
        "total_rss_mb": round(statistics.median(r["rss_mb"] for r in results), 1),
        "rss_mb_by_process": {
            name: round(statistics.median(r["rss_mb_by_process"].get(name, 0.0) for r in results), 1)
            for name in results[0]["rss_mb_by_process"]
        },
        "samples": [{k: round(v, 3) for k, v in r.items() if k != "rss_mb_by_process"} for r in results],
    }


def describe(result: dict[str, Any]) -> str:
    return (
        f"{result['backend']} runtime: cold start of {result['topology']['consul_servers']} Consul servers, "
        f"{result['topology']['etcd_members']} etcd "
        f"members, Prometheus and {result['topology']['services']} services, {result['runs']} runs:\n"
        f"  all services passing in Consul: median {result['median_seconds_to_passing']} s, "
        f"max {result['max_seconds_to_passing']} s (target <= 3 s)\n"
        f"  lesson 00 ready (every check passing, and JupyterLab answering where the runtime serves it): median "
        f"{result['median_seconds_to_lesson_ready']} s\n"
        f"  every service scraped by Prometheus: median {result['median_seconds_to_scraped']} s (target <= 7 s)\n"
        f"  resident memory of the whole lab (what runs it too: the local engine; compose's JupyterLab, before any "
        f"kernel, etcd-sd and the address holders): "
        f"{result['total_rss_mb']} MB (target <= 600 MB): "
        + ", ".join(f"{name} {mb}" for name, mb in result["rss_mb_by_process"].items())
    )
