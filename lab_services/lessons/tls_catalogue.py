"""Lesson 06's TLS tables: the lab's certificates described, and every classic mistake provoked against a real server.

    certificate_table(material)        # each certificate's subject, issuer, SANs and expiry

    catalogue, errors = failure_catalogue(material, call_timeout=3.0)
    catalogue            # a Table: case, code, ms, cause, fix (the rows stay plain data for the checkpoints)
    errors["unknown CA"].details()

Every case reaches a Python client as UNAVAILABLE; the text of the error tells them apart, and
`tls.explain` reads it. Some mistakes only the server can see (with TLS 1.3 the client finishes its half of
the handshake first), so each case also says what the client knows about itself, as hints for `explain`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import grpc
from cryptography import x509

from lab_services.core.table import Table
from lab_services.service import UserServer, user_pb2, user_pb2_grpc
from lab_services.tls import ServerTLS, TLSMaterial, channel, san_names
from lab_services.tls.explain import explain

Dial = Callable[[str], grpc.Channel]


class Case(NamedTuple):
    """One mistake: the server's TLS settings (None: plaintext), how the client dials, and hints for explain()."""

    server_tls: ServerTLS | None
    dial: Dial
    hints: dict[str, bool]


def certificate_table(material: TLSMaterial) -> Table:
    """Each certificate of `material` with its subject, issuer, SANs ('-' for a CA, which has none) and expiry."""
    certificates = {
        "CA": material.ca,
        "server": material.server,
        "client": material.client,
        "other CA": material.other_ca,
        "client of the other CA": material.other_client,
        "expired server": material.expired_server,
        "server with a wrong SAN": material.wrong_san_server,
    }
    rows = []
    for label, pair in certificates.items():
        cert = pair.load()
        try:
            sans = ", ".join(san_names(pair))
        except x509.ExtensionNotFound:  # a CA certificate carries no SAN extension
            sans = "-"
        rows.append(
            {
                "certificate": label,
                "subject": cert.subject.rfc4514_string(),
                "issuer": cert.issuer.rfc4514_string(),
                "SANs": sans,
                "valid until": cert.not_valid_after_utc.strftime("%Y-%m-%d"),
            }
        )
    return Table(rows)


def failure_cases(material: TLSMaterial) -> dict[str, Case]:
    """The eight classic TLS and mTLS mistakes, built from the lab's certificate material."""
    return {
        "unknown CA": Case(material.server_tls(), lambda a: channel(a, material, ca=material.other_ca), {}),
        "wrong SAN": Case(material.server_tls(cert=material.wrong_san_server), lambda a: channel(a, material), {}),
        "wrong server name": Case(
            material.server_tls(), lambda a: channel(a, material, server_name="other.example.test"), {}
        ),
        "expired certificate": Case(
            material.server_tls(cert=material.expired_server), lambda a: channel(a, material), {}
        ),
        "TLS client, plaintext server": Case(None, lambda a: channel(a, material), {}),
        "plaintext client, TLS server": Case(material.server_tls(), grpc.insecure_channel, {"client_tls": False}),
        "mTLS, no client certificate": Case(
            material.server_tls(mtls=True), lambda a: channel(a, material), {"client_tls": True, "client_cert": False}
        ),
        "mTLS, client certificate from another CA": Case(
            material.server_tls(mtls=True),
            lambda a: channel(a, material, client_cert=material.other_client),
            {"client_tls": True, "client_cert": True},
        ),
    }


def provoke(server_tls: ServerTLS | None, dial: Dial, call_timeout: float) -> tuple[grpc.RpcError | None, float]:
    """Start a server, make one call the given way; the error (None if the call succeeded) and the seconds it took."""
    server = UserServer(name="lesson06-case", tls=server_tls).start()
    started = time.monotonic()
    try:
        with dial(server.address) as ch:
            user_pb2_grpc.UserServiceStub(ch).CreateUser(
                user_pb2.CreateUserRequest(name="Eve", email=f"eve{time.time_ns()}@example.org"),
                timeout=call_timeout,
                wait_for_ready=False,
            )
        return None, time.monotonic() - started
    except grpc.RpcError as err:
        return err, time.monotonic() - started
    finally:
        server.stop(0)


def failure_catalogue(material: TLSMaterial, call_timeout: float) -> tuple[Table, dict[str, grpc.RpcError | None]]:
    """Provoke every case of `failure_cases`; a table of what each did and why, and the raw errors by case."""
    rows: list[dict[str, Any]] = []
    errors: dict[str, grpc.RpcError | None] = {}
    for case, (server_tls, dial, hints) in failure_cases(material).items():
        err, seconds = provoke(server_tls, dial, call_timeout)
        errors[case] = err
        why = explain(err, **hints) if err is not None else None
        rows.append(
            {
                "case": case,
                "failed": err is not None,
                "code": err.code().name if err is not None else "OK (!)",
                "ms": round(seconds * 1000),
                "cause": why.cause if why else "-",
                "fix": why.fix if why else "-",
            }
        )
    return Table(rows, ["case", "code", "ms", "cause", "fix"]), errors
