"""Prometheus on a real lab: both discovery paths (Consul and etcd file_sd), service metrics, the PromQL helpers."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import grpc
import pytest
from labs import local_lab

from lab_services.core.instance import ServiceInstance
from lab_services.metrics import prometheus
from lab_services.runtime.file_sd import file_sd_groups
from lab_services.service import user_pb2, user_pb2_grpc

SERVICES = ("user-1", "user-2")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("prometheus"), consul_servers=1, etcd_members=1, services=len(SERVICES)
    ) as lab:
        yield lab


@pytest.fixture(scope="module")
def url(cluster):
    return cluster.status().prometheus.url


@pytest.fixture(scope="module")
def traffic(cluster, url):
    """Calls to every instance (some NOT_FOUND) until Prometheus sees them as rates: a rate needs two scrapes apart."""
    stubs = [user_pb2_grpc.UserServiceStub(grpc.insecure_channel(s.address)) for s in cluster.status().services]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for stub in stubs:
            for _ in range(5):
                stub.CreateUser(
                    user_pb2.CreateUserRequest(name="Ada", email=f"ada-{uuid.uuid4().hex[:8]}@example.com"), timeout=5
                )
            with pytest.raises(grpc.RpcError):
                stub.GetUser(user_pb2.GetUserRequest(id="nobody"), timeout=5)
        rates = prometheus.calls_per_second(url, window="1m")
        if (
            set(rates) >= set(SERVICES)
            and all(rates.values())
            and "CreateUser" in prometheus.latency_quantiles(url, window="1m")
        ):
            return
        time.sleep(0.5)
    raise AssertionError(f"no rates for {SERVICES} in Prometheus after 30 s: {prometheus.calls_per_second(url)}")


def test_every_instance_is_up_through_both_discovery_paths(url):
    prometheus.wait_for_targets(url, prometheus.CONSUL_JOB, len(SERVICES), timeout=15)
    prometheus.wait_for_targets(url, prometheus.ETCD_JOB, len(SERVICES), timeout=15)
    found = {(t["job"], t["instance"], t["registry"], t["health"]) for t in prometheus.targets(url)}
    for instance in SERVICES:
        assert (prometheus.CONSUL_JOB, instance, "consul", "up") in found
        assert (prometheus.ETCD_JOB, instance, "etcd", "up") in found


def test_the_config_has_a_file_sd_job_for_etcd(cluster):
    status = cluster.status()
    config = json.loads(Path(status.prometheus.config).read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["lab-services"]["consul_sd_configs"][0]["refresh_interval"] == "1s"
    (file_sd,) = jobs["lab-services-etcd"]["file_sd_configs"]
    written = json.loads(Path(file_sd["files"][0]).read_text())
    assert sorted(g["labels"]["instance"] for g in written) == list(SERVICES)
    assert all(g["labels"]["registry"] == "etcd" and g["labels"]["service"] == "user" for g in written)


def test_file_sd_groups_skip_instances_without_a_metrics_port():
    with_port = ServiceInstance("a-1", "a", "127.0.0.1", 5001, meta={"metrics_port": "9101"})
    without = ServiceInstance("a-2", "a", "127.0.0.1", 5002)
    assert file_sd_groups([without, with_port]) == [
        {"targets": ["127.0.0.1:9101"], "labels": {"instance": "a-1", "service": "a", "registry": "etcd"}}
    ]


def test_service_metrics_carry_grpc_labels(url, traffic):
    handled = prometheus.query(url, 'grpc_server_handled_total{job="lab-services"}')
    keys = {
        (s.labels["instance"], s.labels["grpc_service"], s.labels["grpc_method"], s.labels["grpc_code"])
        for s in handled
    }
    for instance in SERVICES:
        assert (instance, "lab.user.v1.UserService", "CreateUser", "OK") in keys
        assert (instance, "lab.user.v1.UserService", "GetUser", "NOT_FOUND") in keys
    assert prometheus.query(url, 'grpc_server_handling_seconds_count{grpc_method="CreateUser"}')
    assert prometheus.query(url, "grpc_server_in_flight")


def test_named_queries_return_one_series_per_instance_or_method(url, traffic):
    rates = prometheus.calls_per_second(url, window="1m")
    assert set(rates) == set(SERVICES) and all(r >= 0 for r in rates.values())
    ratios = prometheus.error_ratio(url, window="1m")
    assert set(ratios) <= set(SERVICES) and all(0 <= r <= 1 for r in ratios.values())
    latency = prometheus.latency_quantiles(url, window="1m")
    assert "CreateUser" in latency and set(latency["CreateUser"]) == {0.5, 0.95, 0.99}
    p50, p99 = latency["CreateUser"][0.5], latency["CreateUser"][0.99]
    assert 0 < p50 <= p99, latency


def test_range_query_and_plots(url, traffic):
    series = prometheus.query_range(url, prometheus.calls_per_second_query("1m"), time.time() - 60, step=5)
    assert {s.labels["instance"] for s in series} == set(SERVICES)
    assert all(len(s.times) == len(s.values) > 0 for s in series)
    fig = prometheus.plot_rate(url, seconds=60, window="1m", marks={"now": time.time()})
    assert len(fig.axes[0].lines) == len(SERVICES) + 1  # one per instance, and the mark
    fig = prometheus.plot_latency(url, seconds=60, window="1m", method="CreateUser")
    assert len(fig.axes[0].lines) == 3


def test_errors_name_the_problem(url):
    with pytest.raises(prometheus.PrometheusError, match=r"bad_data|parse error"):
        prometheus.query(url, "rate(grpc_server_handled_total[")
    with pytest.raises(prometheus.PrometheusError, match="unreachable"):
        prometheus.query("http://127.0.0.1:1", "up")
    with pytest.raises(prometheus.PrometheusError, match="range vector"):
        prometheus.query(url, "up[1m]")
