"""`discovery-lab bench startup` measures a real cold start and reports the documented figures."""

from __future__ import annotations

from lab_services.bench import startup
from lab_services.runtime.config import ClusterConfig


def test_one_cold_start_reports_every_figure():
    result = startup.run(runs=1, config=ClusterConfig(consul_servers=1, etcd_members=1, services=2))
    for key in ("median_seconds_to_passing", "max_seconds_to_passing", "median_seconds_to_scraped", "total_rss_mb"):
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["median_seconds_to_scraped"] >= result["median_seconds_to_passing"]
    assert "resident memory of the whole lab" in startup.describe(result)
    by_process = result["rss_mb_by_process"]
    # The lab's processes, and the local engine that runs them (counted without its children, which are those).
    assert set(by_process) == {"consul-1", "etcd-1", "prometheus", "user-1", "user-2", "engine"}
    assert all(mb > 0 for mb in by_process.values())
    assert abs(sum(by_process.values()) - result["total_rss_mb"]) < 1
