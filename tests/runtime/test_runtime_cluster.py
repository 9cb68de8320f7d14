"""The local runtime against real processes: readiness, per-process operations, status, and bad input."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from labs import local_lab

from lab_services.core.etcd_gateway import EtcdGateway
from lab_services.core.http import http_json
from lab_services.core.ports import PortInUseError
from lab_services.runtime import Cluster, open_cluster, processes
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.status import ClusterStatus


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_lab(tmp_path_factory.mktemp("cluster"), consul_servers=1, etcd_members=1, services=2) as lab:
        yield lab


def consul_health(lab: Cluster, passing: bool = False) -> list[str]:
    status = lab.status()
    url = f"http://{status.consul.http[0]}/v1/health/service/user" + ("?passing" if passing else "")
    return sorted(entry["Service"]["ID"] for entry in http_json(url))


def etcd_keys(lab: Cluster) -> list[str]:
    return EtcdGateway(lab.status().etcd.endpoints[0]).keys("/services/user/")


def test_status_reports_the_documented_fields(cluster):
    status = json.loads(json.dumps(cluster.status().to_dict()))  # what `status --json` prints
    assert status["backend"] == "local"
    assert len(status["consul"]["http"]) == 1 and status["consul"]["dns"].startswith("127.0.0.1:")
    assert status["consul"]["leader"] == "consul-1"
    assert len(status["etcd"]["endpoints"]) == 1 and status["etcd"]["leader"] == "etcd-1"
    assert status["prometheus"]["url"].startswith("http://127.0.0.1:")
    assert [s["id"] for s in status["services"]] == ["user-1", "user-2"]
    for svc in status["services"]:
        assert svc["address"].startswith("127.0.0.1:") and svc["pid"] and svc["metrics_url"].endswith("/metrics")
    assert {p["name"] for p in status["processes"]} == {"consul-1", "etcd-1", "prometheus", "user-1", "user-2"}
    assert all(p["pid"] and p["state"] == "running" for p in status["processes"])
    assert status["binaries"]["consul"]["version"] == "1.8.7"
    assert set(status["binaries"]) == {"consul", "etcd", "etcdctl", "prometheus"}


def test_the_typed_status_reads_back_from_its_json(cluster):
    status = cluster.status()
    assert ClusterStatus.from_dict(json.loads(json.dumps(status.to_dict()))) == status
    assert list(status.to_dict()) == [
        "backend",
        "config",
        "state_dir",
        "consul",
        "etcd",
        "prometheus",
        "services",
        "processes",
        "tls",
        "binaries",
        "timings",
        "reaped",
        "moved_ports",
        "project",
    ]
    assert status.service("user-2").address == status.services[1].address
    assert list(status.to_dict()["services"][0]) == [
        "id",
        "name",
        "version",
        "address",
        "admin",
        "pid",
        "metrics_url",
        "state",
        "container",
    ]
    assert set(status.processes_of("consul")) == {"consul-1"}


def test_every_service_is_registered_in_both_registries(cluster):
    assert consul_health(cluster, passing=True) == ["user-1", "user-2"]
    assert etcd_keys(cluster) == ["/services/user/user-1", "/services/user/user-2"]


def test_a_consul_port_in_use_is_reported_with_its_holder(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = ClusterConfig(
            consul_servers=1, etcd_members=0, services=0, prometheus=False, registry="none", consul_http_port=port
        )
        with pytest.raises(
            PortInUseError, match=rf"port {port} on 127.0.0.1 is in use by pid \d+ .*--consul-http-port"
        ):
            open_cluster(tmp_path, "local").launch(config)
    assert processes.live_records(tmp_path) == []


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("consul_servers", 2, "consul_servers: 2; use 0, 1 or 3"),
        ("services", -1, "services: -1"),
        ("registry", "zookeeper", "registry: 'zookeeper'"),
        ("host", "10.0.0.1", "not a lab address"),
    ],
)
def test_bad_cluster_shapes_are_refused(field, value, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        open_cluster(tmp_path, "local").launch(ClusterConfig(**{field: value}))
    assert processes.live_records(tmp_path) == []


def test_a_missing_binary_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_CONSUL_BIN", str(tmp_path / "no-such-consul"))
    with pytest.raises(RuntimeError, match=r"LAB_CONSUL_BIN=.*is not an executable file"):
        open_cluster(tmp_path, "local").launch(ClusterConfig(services=0))


def test_distinct_instance_addresses_share_one_port(tmp_path):
    with local_lab(
        tmp_path,
        consul_servers=1,
        etcd_members=0,
        services=2,
        prometheus=False,
        registry="consul",
        instance_addresses="distinct",
    ) as lab:
        services = lab.status().services
        hosts = [s.instance.host for s in services]
        ports = {s.instance.port for s in services}
        assert hosts == ["127.0.0.11", "127.0.0.12"] and len(ports) == 1
        added = lab.add_service()
        assert added["address"] == f"127.0.0.13:{ports.pop()}"
        entries = http_json(f"http://{lab.status().consul.http[0]}/v1/health/service/user?passing")
        assert sorted(e["Service"]["Address"] for e in entries) == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]


def test_up_with_mtls_serves_only_callers_with_a_client_certificate(tmp_path):
    import grpc

    from lab_services.service import user_pb2, user_pb2_grpc
    from lab_services.tls import CertPair, client_credentials

    with local_lab(
        tmp_path, consul_servers=1, etcd_members=0, services=1, prometheus=False, registry="consul", tls="mtls"
    ) as lab:
        status = lab.status()
        tls, address = status.tls, status.services[0].address
        assert tls.mode == "mtls"
        # The instance passed its Consul gRPC check over TLS, or up() would not have returned.
        assert consul_health(lab, passing=True) == ["user-1"]
        ca, client = CertPair(Path(tls.ca)), CertPair(Path(tls.client_cert), Path(tls.client_key))
        with grpc.secure_channel(address, client_credentials(ca, client)) as channel:
            user = user_pb2_grpc.UserServiceStub(channel).CreateUser(
                user_pb2.CreateUserRequest(name="Ada", email="ada@lab.test"), timeout=5
            )
            assert user.served_by == "user-1"
        with grpc.insecure_channel(address) as plain, pytest.raises(grpc.RpcError) as refused:
            user_pb2_grpc.UserServiceStub(plain).GetUser(user_pb2.GetUserRequest(id=user.id), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_two_processes_ensuring_one_lab_at_once_start_one_engine(tmp_path):
    """A classroom server starts lesson 00's lab as the learner's first cell asks for it: one engine, shared."""
    script = (
        "import json, sys; from lab_services.runtime import open_cluster; "
        "from lab_services.runtime.config import ClusterConfig; "
        f"from pathlib import Path; lab = open_cluster(Path({str(tmp_path)!r}), 'local'); "
        "lab.ensure(ClusterConfig(consul_servers=0, etcd_members=1, services=0, prometheus=False)); "
        "print(lab.published()['pid'])"
    )
    runs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    engines = [int(run.communicate(timeout=120)[0].split()[-1]) for run in runs]
    lab = open_cluster(tmp_path, "local")
    try:
        assert [run.returncode for run in runs] == [0, 0]
        assert engines[0] == engines[1] == lab.published()["pid"], f"two engines were started: {engines}"
    finally:
        lab.down()
    assert processes.live_records(tmp_path) == [], "the lab left processes behind after down"
