"""TLS and mTLS on real loopback servers: certificates, good calls, and every failure `explain()` names."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from lab_services.core.paths import REPO_DIR
from lab_services.service import UserServer, user_pb2, user_pb2_grpc
from lab_services.service.main import parse_args, server_tls
from lab_services.tls import ServerTLS, TLSMaterial, channel, make_server_cert, san_names
from lab_services.tls import explain as tls_explain
from lab_services.tls.explain import explain

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    return TLSMaterial.create(tmp_path_factory.mktemp("tls"))


def get_user(ch: grpc.Channel) -> grpc.RpcError | None:
    """Call the service once, failing fast; the error, or None if the call reached the servicer."""
    try:
        user_pb2_grpc.UserServiceStub(ch).GetUser(user_pb2.GetUserRequest(id="u-404"), timeout=3, wait_for_ready=False)
    except grpc.RpcError as err:
        # NOT_FOUND comes from the servicer: the connection, and so the handshake, succeeded.
        return None if err.code() == grpc.StatusCode.NOT_FOUND else err
    return None


def serve(tls: ServerTLS | None) -> Iterator[UserServer]:
    server = UserServer(tls=tls).start()
    try:
        yield server
    finally:
        server.stop(0)


# Certificates


def test_private_keys_are_0600(material: TLSMaterial):
    keys = sorted(material.directory.glob("*.key"))
    assert len(keys) == 7
    assert {stat.S_IMODE(k.stat().st_mode) for k in keys} == {0o600}


def test_expired_certificate_is_really_expired(material: TLSMaterial):
    cert = material.expired_server.load()
    assert cert.not_valid_after_utc < dt.datetime.now(dt.UTC)
    assert material.server.load().not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=29)


def test_server_sans_include_loopback_and_extra_hosts(material: TLSMaterial, tmp_path: Path):
    assert {"127.0.0.1", "localhost"} <= set(san_names(material.server))
    extra = make_server_cert(material.ca, tmp_path, "svc", hosts=["127.0.0.2", "user.service.consul"])
    assert san_names(extra) == ["127.0.0.1", "127.0.0.2", "localhost", "user.service.consul"]
    assert san_names(material.wrong_san_server) == ["wrong.example.test"]


def test_client_certificate_is_for_client_auth(material: TLSMaterial):
    usage = material.client.load().extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert material.other_client.load().issuer == material.other_ca.load().subject


# Good calls


@pytest.mark.parametrize("mtls", [False, True], ids=["tls", "mtls"])
def test_good_calls_succeed(material: TLSMaterial, mtls: bool):
    for server in serve(material.server_tls(mtls=mtls)):
        for address in (server.address, f"localhost:{server.port}"):
            with channel(address, material, mtls=mtls) as ch:
                assert get_user(ch) is None
        with channel(server.address, material, mtls=mtls) as ch:
            request = user_pb2.CreateUserRequest(name="Ada", email="ada@example.org")
            assert user_pb2_grpc.UserServiceStub(ch).CreateUser(request, timeout=3).name == "Ada"


# Failures, each with the cause explain() must name

Case = tuple[Callable[[TLSMaterial], ServerTLS | None], Callable[[str, TLSMaterial], grpc.Channel], dict, str]
CASES: dict[str, Case] = {
    "unknown CA": (
        lambda m: m.server_tls(),
        lambda a, m: channel(a, m, ca=m.other_ca),
        {},
        tls_explain.UNKNOWN_CA,
    ),
    "wrong SAN": (
        lambda m: m.server_tls(cert=m.wrong_san_server),
        lambda a, m: channel(a, m),
        {},
        tls_explain.HOSTNAME_MISMATCH,
    ),
    "wrong server name": (
        lambda m: m.server_tls(),
        lambda a, m: channel(a, m, server_name="other.example.test"),
        {},
        tls_explain.HOSTNAME_MISMATCH,
    ),
    "expired": (
        lambda m: m.server_tls(cert=m.expired_server),
        lambda a, m: channel(a, m),
        {},
        tls_explain.EXPIRED,
    ),
    "TLS client, plaintext server": (
        lambda m: None,
        lambda a, m: channel(a, m),
        {},
        tls_explain.TLS_TO_PLAINTEXT,
    ),
    "mTLS, no client certificate": (
        lambda m: m.server_tls(mtls=True),
        lambda a, m: channel(a, m),
        {"client_tls": True, "client_cert": False},
        tls_explain.CLIENT_CERT_MISSING,
    ),
    "mTLS, client certificate from another CA": (
        lambda m: m.server_tls(mtls=True),
        lambda a, m: channel(a, m, client_cert=m.other_client),
        {"client_tls": True, "client_cert": True},
        tls_explain.CLIENT_CERT_OTHER_CA,
    ),
    "plaintext client, TLS server": (
        lambda m: m.server_tls(),
        lambda a, m: grpc.insecure_channel(a),
        {"client_tls": False},
        tls_explain.PLAINTEXT_TO_TLS,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_failure_is_explained(material: TLSMaterial, case: str):
    make_tls, dial, hints, cause = CASES[case]
    for server in serve(make_tls(material)):
        with dial(server.address, material) as ch:
            started = time.monotonic()
            err = get_user(ch)
            assert err is not None, f"{case}: the call succeeded"
            assert time.monotonic() - started < 2  # failed fast, not by deadline
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    why = explain(err, **hints)
    assert why.cause == cause, why.detail
    assert why.code == grpc.StatusCode.UNAVAILABLE and why.fix == tls_explain.FIXES[cause]
    assert str(why).startswith(f"{cause} (UNAVAILABLE): ")
    if hints:  # only the server saw why; without the hints the client must not guess
        unsure = explain(err)
        assert unsure.cause == tls_explain.SERVER_CLOSED and cause in unsure.candidates


def test_other_errors_are_unknown(material: TLSMaterial):
    for server in serve(None):
        address = server.address
    with grpc.insecure_channel(address) as ch:  # the server is gone: connection refused
        err = get_user(ch)
    assert explain(err).cause == tls_explain.UNKNOWN and "Connection refused" in explain(err).detail
    assert explain(FileNotFoundError("server.crt")).cause == tls_explain.UNKNOWN
    assert explain(FileNotFoundError("server.crt")).code is None


# The process: python -m lab_services.service --tls-cert ... --mtls


def test_process_serves_mtls_and_its_log_names_each_rejection(material: TLSMaterial, tmp_path: Path):
    log_path = tmp_path / "service.log"
    env = {**os.environ, "GRPC_VERBOSITY": "INFO"}  # handshake failures are logged at INFO
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lab_services.service",
                "--grace",
                "0",
                "--tls-cert",
                str(material.server.cert_path),
                "--tls-key",
                str(material.server.key_path),
                "--tls-ca",
                str(material.ca.cert_path),
                "--mtls",
            ],
            cwd=REPO_DIR,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
    try:
        line = process.stdout.readline()
        assert line.startswith("READY "), log_path.read_text()
        address = line.split('"address": "')[1].split('"')[0]
        with channel(address, material, mtls=True) as ch:
            assert get_user(ch) is None
        rejected = {
            tls_explain.CLIENT_CERT_MISSING: lambda: channel(address, material),
            tls_explain.CLIENT_CERT_OTHER_CA: lambda: channel(address, material, client_cert=material.other_client),
            tls_explain.PLAINTEXT_TO_TLS: lambda: grpc.insecure_channel(address),
        }
        for cause, dial in rejected.items():
            seen = log_path.read_text().count("Handshake failed")
            with dial() as ch:
                err = get_user(ch)
            assert err is not None
            server_log = wait_for_more(log_path, "Handshake failed", seen)
            assert explain(err, server_log=server_log).cause == cause
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()


def wait_for_more(path: Path, text: str, seen: int, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while (content := path.read_text()).count(text) <= seen and time.monotonic() < deadline:
        time.sleep(0.02)
    return content


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tls-cert", "s.crt"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "s.crt", "--tls-key", "s.key", "--mtls"], "--mtls needs"),
        (["--tls-cert", "s.crt", "--tls-key", "s.key", "--tls-ca", "ca.crt"], "--tls-ca only matters with --mtls"),
    ],
)
def test_bad_tls_flags_exit_2(flags: list[str], message: str, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as info:
        parse_args(flags)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_missing_certificate_file_is_named(tmp_path: Path):
    args = parse_args(["--tls-cert", str(tmp_path / "nope.crt"), "--tls-key", str(tmp_path / "nope.key")])
    with pytest.raises(ValueError, match=r"--tls-cert .*nope\.crt: no such file"):
        server_tls(args)
