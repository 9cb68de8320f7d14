"""Both discovery channel modes over TLS and mutual TLS, against a lab started with `up --tls mtls`."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from labs import local_lab

from lab_services.core.instance import ServiceInstance
from lab_services.discovery import ConsulWatcher, NativeChannel, PickerChannel
from lab_services.service import user_pb2, user_pb2_grpc
from lab_services.tls import CertPair, client_credentials


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("tls-lab"),
        consul_servers=1,
        etcd_members=0,
        services=2,
        prometheus=False,
        registry="consul",
        tls="mtls",
    ) as lab:
        yield lab


@pytest.fixture(scope="module")
def watcher(tls_lab):
    with ConsulWatcher("user", tls_lab.status().consul.http) as w:
        assert w.wait_for(lambda xs: len(xs) == 2, 15)
        yield w


def credentials(lab, with_client_cert: bool = True) -> grpc.ChannelCredentials:
    tls = lab.status().tls
    client = CertPair(Path(tls.client_cert), Path(tls.client_key)) if with_client_cert else None
    return client_credentials(CertPair(Path(tls.ca)), client)


def served_by(channel, want: set[str], limit: int = 300) -> set[str]:
    """Call until every instance in `want` has answered (round robin adds a subchannel once its handshake is done)."""
    stub = user_pb2_grpc.UserServiceStub(channel)
    seen: set[str] = set()
    for n in range(limit):
        seen.add(
            stub.CreateUser(
                user_pb2.CreateUserRequest(name="T", email=f"t{n}-{id(channel)}@example.org"), timeout=5
            ).served_by
        )
        if seen >= want:
            break
    return seen


@pytest.mark.parametrize("mode", [PickerChannel, NativeChannel])
def test_discovery_channel_over_mtls_reaches_every_instance(tls_lab, watcher, mode):
    with mode(watcher, credentials=credentials(tls_lab)) as channel:
        assert served_by(channel, {"user-1", "user-2"}) == {"user-1", "user-2"}


def test_without_a_client_certificate_every_call_is_refused(tls_lab, watcher):
    with (
        PickerChannel(watcher, retries=1, credentials=credentials(tls_lab, with_client_cert=False)) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        user_pb2_grpc.UserServiceStub(channel).GetUser(user_pb2.GetUserRequest(id="u-1"), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_consul_verifies_certificates_in_its_grpc_checks(tls_lab, tmp_path):
    """The agents check with the lab CA: a server whose certificate another CA signed fails, unless skip-verify."""
    from lab_services.registry import CheckSpec, ConsulRegistrar, ServiceRegistration
    from lab_services.registry.consul_health import ConsulHealth
    from lab_services.service import UserServer
    from lab_services.tls import ServerTLS, TLSMaterial

    stranger = TLSMaterial.create(tmp_path / "other")  # its own CA, unknown to the lab's agents
    server = UserServer(name="stranger", tls=ServerTLS(stranger.server)).start()
    consul_http = tls_lab.status().consul.http[0]
    registrars = []
    try:
        for skip in (False, True):
            registration = ServiceRegistration(
                ServiceInstance(id=f"stranger-skip-{skip}", name="stranger", host="127.0.0.1", port=server.port),
                checks=(CheckSpec("grpc", grpc_use_tls=True, tls_skip_verify=skip),),
            )
            registrars.append(ConsulRegistrar(registration, consul_http=consul_http).start())
        with ConsulHealth(consul_http) as health:
            health.wait_all("stranger-skip-True", "passing", timeout=15)
            health.wait_all("stranger-skip-False", "critical", timeout=15)
            assert health.service_status("stranger-skip-False") == "critical"
    finally:
        for registrar in registrars:
            registrar.stop()
        server.stop(grace=0)
