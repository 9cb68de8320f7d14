"""Make a lab CA, server and client certificates, and the gRPC credentials and channels that use them.

    material = TLSMaterial.create(tmp_dir)                  # CA, server, client and the failure cases
    server = UserServer(tls=material.server_tls(mtls=True)).start()
    with channel(server.address, material, mtls=True) as ch: ...

Everything is for the lab's own addresses (loopback, and the kernel's address, kernel_host()) and a short life:
keys are EC P-256, written 0600, certificates last days.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lab_services.core.network import kernel_host

DEFAULT_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class CertPair:
    """A certificate and its private key, both PEM files; a CA given only to verify others needs no key."""

    cert_path: Path
    key_path: Path | None = None

    @property
    def cert_pem(self) -> bytes:
        return self.cert_path.read_bytes()

    @property
    def key_pem(self) -> bytes:
        if self.key_path is None:
            raise ValueError(f"{self.cert_path} was given without its private key")
        return self.key_path.read_bytes()

    def load(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


@dataclass(frozen=True)
class ServerTLS:
    """What a server needs for TLS; with `client_ca` set it also requires client certificates (mTLS)."""

    cert: CertPair
    client_ca: CertPair | None = None

    @property
    def mtls(self) -> bool:
        return self.client_ca is not None

    def credentials(self) -> grpc.ServerCredentials:
        return server_credentials(self.cert, self.client_ca)


def make_ca(directory: str | os.PathLike, name: str = "Lab CA", days: int = 30) -> CertPair:
    """A self-signed CA allowed to sign leaf certificates only (path length 0)."""
    key = _new_key()
    subject = _name(name)
    not_before, not_after = _validity(days, expired=False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(Path(directory), _slug(name), cert, key)


def make_server_cert(
    ca: CertPair,
    directory: str | os.PathLike,
    name: str = "server",
    hosts: Iterable[str] = DEFAULT_HOSTS,
    days: int = 30,
    expired: bool = False,
    add_loopback: bool = True,
) -> CertPair:
    """A server certificate for `hosts` (IP addresses and DNS names), plus 127.0.0.1, localhost and kernel_host().

    The kernel's address is named too because a server a lesson starts binds it, and is dialled there: 127.0.0.1
    on the local runtime, the JupyterLab container's address in the compose stack.
    `expired=True` makes one whose validity ended a day ago, for the "certificate expired" lesson;
    `add_loopback=False` names only `hosts`, for the "wrong SAN" lesson.
    """
    names = list(dict.fromkeys([*DEFAULT_HOSTS, kernel_host(), *hosts] if add_loopback else hosts))
    return _leaf(ca, directory, name, names, ExtendedKeyUsageOID.SERVER_AUTH, days, expired)


def make_client_cert(
    ca: CertPair, directory: str | os.PathLike, name: str = "client", days: int = 30, expired: bool = False
) -> CertPair:
    """A client certificate (clientAuth) whose common name identifies the caller."""
    return _leaf(ca, directory, name, [], ExtendedKeyUsageOID.CLIENT_AUTH, days, expired)


def san_names(cert: CertPair) -> list[str]:
    """The subject alternative names of a certificate, IP addresses and DNS names as strings."""
    san = cert.load().extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] + san.get_values_for_type(x509.DNSName)


def server_credentials(cert: CertPair, client_ca: CertPair | None = None) -> grpc.ServerCredentials:
    """Server TLS credentials; with `client_ca`, clients must present a certificate that CA signed."""
    return grpc.ssl_server_credentials(
        [(cert.key_pem, cert.cert_pem)],
        root_certificates=client_ca.cert_pem if client_ca else None,
        require_client_auth=client_ca is not None,
    )


def client_credentials(ca: CertPair, cert: CertPair | None = None) -> grpc.ChannelCredentials:
    """Client TLS credentials trusting `ca`; with `cert`, the client also presents it (for mTLS)."""
    return grpc.ssl_channel_credentials(
        root_certificates=ca.cert_pem,
        private_key=cert.key_pem if cert else None,
        certificate_chain=cert.cert_pem if cert else None,
    )


@dataclass(frozen=True)
class TLSMaterial:
    """A lab's full set: the CA, a server and a client certificate, and one of each failure case."""

    directory: Path
    ca: CertPair
    server: CertPair
    client: CertPair
    other_ca: CertPair  # a CA the server does not trust
    other_client: CertPair  # a client certificate signed by other_ca
    expired_server: CertPair  # signed by ca, validity ended yesterday
    wrong_san_server: CertPair  # signed by ca, names only wrong.example.test

    @classmethod
    def create(cls, directory: str | os.PathLike, hosts: Iterable[str] = DEFAULT_HOSTS, days: int = 30) -> TLSMaterial:
        d = Path(directory)
        ca = make_ca(d, "Lab CA", days)
        other_ca = make_ca(d, "Other CA", days)
        return cls(
            directory=d,
            ca=ca,
            server=make_server_cert(ca, d, "server", hosts, days),
            client=make_client_cert(ca, d, "client", days),
            other_ca=other_ca,
            other_client=make_client_cert(other_ca, d, "other-client", days),
            expired_server=make_server_cert(ca, d, "expired-server", hosts, days, expired=True),
            wrong_san_server=make_server_cert(
                ca, d, "wrong-san-server", ["wrong.example.test"], days, add_loopback=False
            ),
        )

    def server_tls(self, mtls: bool = False, cert: CertPair | None = None) -> ServerTLS:
        """TLS settings for a server using `cert` (default: the good server certificate)."""
        return ServerTLS(cert or self.server, self.ca if mtls else None)


def channel(
    address: str,
    material: TLSMaterial,
    mtls: bool = False,
    server_name: str | None = None,
    ca: CertPair | None = None,
    client_cert: CertPair | None = None,
) -> grpc.Channel:
    """A secure channel to `address` trusting the lab CA (or `ca`), presenting the client certificate under mTLS.

    `server_name` overrides the name checked against the server's SAN (grpc.ssl_target_name_override);
    `client_cert` presents a certificate other than the lab client's, e.g. `material.other_client`.
    """
    presented = client_cert or (material.client if mtls else None)
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.secure_channel(address, client_credentials(ca or material.ca, presented), options=options)


def _leaf(
    ca: CertPair,
    directory: str | os.PathLike,
    name: str,
    hosts: list[str],
    usage: x509.ObjectIdentifier,
    days: int,
    expired: bool,
) -> CertPair:
    ca_cert = ca.load()
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    key = _new_key()
    not_before, not_after = _validity(days, expired)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False)
    return _write(Path(directory), _slug(name), builder.sign(ca_key, hashes.SHA256()), key)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _validity(days: int, expired: bool) -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    if expired:
        # Valid for `days` once, ending a day ago: really expired, not merely "not yet valid".
        return now - dt.timedelta(days=days + 1), now - dt.timedelta(days=1)
    # A minute of slack so a clock a little behind does not see a certificate from the future.
    return now - dt.timedelta(minutes=1), now + dt.timedelta(days=days)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Service Discovery Lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _slug(name: str) -> str:
    return name.lower().replace(" ", "-")


def _write(directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> CertPair:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Created 0600 from the start, so the key is never readable by others, not even for a moment.
    key_path.unlink(missing_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    return CertPair(cert_path, key_path)
