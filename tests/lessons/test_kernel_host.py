"""The servers a lesson starts in the kernel bind and register kernel_host(), here LAB_KERNEL_HOST=127.0.0.5 (a
loopback address other than 127.0.0.1, which Linux binds without setup), and Consul's checks reach them there."""

from __future__ import annotations

import pytest
from labs import ConsulNode

from lab_services import lessons as lab
from lab_services.core.errors import BadInputError
from lab_services.core.network import KERNEL_HOST_ENV, NET_PREFIX_ENV, kernel_host
from lab_services.core.wait import wait_until
from lab_services.lessons.instances import start_registered
from lab_services.lessons.interval_floor import _CountingServer, interval_floor
from lab_services.lessons.resilience.auth import TokenProtectedServer, create_through
from lab_services.lessons.tracing_lab import TracedSystem
from lab_services.registry.consul_health import ConsulHealth
from lab_services.resilience.interceptors import BearerToken
from lab_services.service import UserServer, user_pb2, user_pb2_grpc
from lab_services.tls import TLSMaterial, channel, san_names
from lab_services.tracing import OtlpReceiver

KERNEL = "127.0.0.5"


@pytest.fixture
def kernel_at(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KERNEL_HOST_ENV, KERNEL)
    return KERNEL


def test_the_facade_gives_notebooks_the_kernel_host(kernel_at):
    assert lab.kernel_host() == kernel_host() == kernel_at


def test_registered_instances_bind_and_register_the_kernel_host_and_pass_their_grpc_check(kernel_at, consul_node):
    servers, registrars = start_registered("kernel-host-test", 2, consul_http=consul_node.http)
    try:
        assert {s.address.rsplit(":", 1)[0] for s in servers.values()} == {kernel_at}
        assert {s.http_address.rsplit(":", 1)[0] for s in servers.values()} == {kernel_at}
        for registrar in registrars:
            registrar.wait_registered(5)
        assert {consul_node.service(i)["Address"] for i in servers} == {kernel_at}
        with ConsulHealth(consul_node.http) as health:
            wait_until(
                lambda: sorted(health.instances("kernel-host-test", passing=True)) == sorted(servers),
                15,
                f"both instances passing a gRPC check that dials {kernel_at}",
            )
    finally:
        for registrar in registrars:
            registrar.stop()
        for server in servers.values():
            server.stop(grace=0)


def test_consul_runs_the_interval_floor_http_check_against_the_kernel_host(kernel_at, consul_node: ConsulNode):
    target = _CountingServer()
    try:
        assert target.url.startswith(f"http://{kernel_at}:")
    finally:
        target.server_close()
    floor = interval_floor(consul_node.lab, interval="200ms", seconds=2.5)
    assert floor["runs"] >= 1, f"Consul's HTTP check never reached the counting server on {kernel_at}: {floor}"


def test_the_traced_system_listens_and_registers_on_the_kernel_host(kernel_at, consul_node: ConsulNode):
    with TracedSystem(instances=2, consul_http=[consul_node.http]) as system:
        assert system.receiver.endpoint.startswith(f"{kernel_at}:")
        assert system.gateway is not None and system.gateway.address.startswith(f"{kernel_at}:")
        registered = [consul_node.service(f"{system.service}-{n}") for n in (1, 2)]
        assert {r["Address"] for r in registered} == {kernel_at}
        trace_id, code = system.call()
        assert code == "OK"
        assert {s.service for s in system.trace(trace_id, 3)} >= {"client", "gateway", "user"}


def test_the_bearer_token_server_listens_on_the_kernel_host(kernel_at):
    with TokenProtectedServer("s3cret") as server:
        assert server.address.startswith(f"{kernel_at}:")
        assert create_through(server.address, BearerToken("s3cret")).startswith("OK, created")


def test_a_tls_server_on_the_kernel_host_is_named_by_its_certificate(kernel_at, tmp_path):
    material = TLSMaterial.create(tmp_path)
    assert {"127.0.0.1", "localhost", kernel_at} <= set(san_names(material.server))
    server = UserServer(name="kernel-host-tls", tls=material.server_tls()).start()
    try:
        assert server.host == kernel_at
        with channel(server.address, material) as ch:
            user = user_pb2_grpc.UserServiceStub(ch).CreateUser(
                user_pb2.CreateUserRequest(name="Ada", email="ada@example.org"), timeout=5
            )
        assert user.id
    finally:
        server.stop(0)


def test_an_explicit_host_still_wins(kernel_at):
    receiver = OtlpReceiver(host="127.0.0.1").start()
    try:
        assert receiver.endpoint.startswith("127.0.0.1:")
    finally:
        receiver.stop()


def test_an_address_on_the_stacks_network_is_a_kernel_host(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(NET_PREFIX_ENV, "10.213.7")
    monkeypatch.setenv(KERNEL_HOST_ENV, "10.213.7.20")
    assert kernel_host() == "10.213.7.20"


@pytest.mark.parametrize("address", ["192.0.2.10", "0.0.0.0", "jupyter"])
def test_a_kernel_host_outside_the_lab_is_refused_before_anything_binds(monkeypatch, address):
    monkeypatch.setenv(NET_PREFIX_ENV, "10.213.7")
    monkeypatch.setenv(KERNEL_HOST_ENV, address)
    refusal = rf"{KERNEL_HOST_ENV}: '{address}' is not a lab address; the lab uses only loopback \(127\.0\.0\.0/8\)"
    with pytest.raises(BadInputError, match=refusal):
        kernel_host()
    with pytest.raises(BadInputError, match=refusal):
        UserServer(name="kernel-host-refused")
    with pytest.raises(BadInputError, match=refusal):
        OtlpReceiver()


def test_without_the_variable_the_kernel_host_is_loopback(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(KERNEL_HOST_ENV, raising=False)
    assert kernel_host() == "127.0.0.1"
    server = UserServer(name="kernel-host-default")
    assert server.host == server.sidecar.host == "127.0.0.1"
