"""Lesson 06's exercise: an mTLS channel built from the certificate files with grpc.ssl_channel_credentials, no lab
helper. The checker says right or wrong and why; `my_mtls_channel` is one solution."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from lab_services.lessons.exercises.verdict import Verdict
from lab_services.service import UserServer, user_pb2, user_pb2_grpc
from lab_services.tls.explain import explain

NAME = "06-mtls"
HOW = (
    "read the three files as bytes and pass them to grpc.ssl_channel_credentials(root_certificates=CA, "
    "private_key=KEY, certificate_chain=CERT), then grpc.secure_channel(address, credentials)"
)


def check(make_channel: Callable[..., Any], material: Any) -> Verdict:
    """06-mtls: `make_channel(address, ca_file, cert_file, key_file)` (paths as str) returns a channel an mTLS
    server accepts: it must trust the lab CA and present the lab client's certificate and key."""
    name = NAME
    if not callable(make_channel):
        return Verdict(
            name,
            False,
            "define my_mtls_channel(address, ca_file, cert_file, key_file) returning a grpc.Channel; "
            f"got {make_channel!r}",
        )
    files = [str(material.ca.cert_path), str(material.client.cert_path), str(material.client.key_path)]
    server = UserServer(name="exercise06", tls=material.server_tls(mtls=True)).start()
    try:
        made = make_channel(server.address, *files)
        if made is None:
            return Verdict(name, False, f"my_mtls_channel returned None; {HOW}")
        if not isinstance(made, grpc.Channel):
            return Verdict(name, False, f"my_mtls_channel returned {made!r}; return a grpc.Channel: {HOW}")
        with made:
            try:
                user_pb2_grpc.UserServiceStub(made).GetUser(user_pb2.GetUserRequest(id="u-404"), timeout=3)
            except grpc.RpcError as err:
                if err.code() == grpc.StatusCode.NOT_FOUND:  # the servicer answered: the handshake worked
                    return Verdict(
                        name, True, "the mTLS server accepted your certificate and the call reached the service"
                    )
                found = explain(err)
                hint = f" (or one of: {', '.join(found.candidates)})" if found.candidates else ""
                return Verdict(
                    name,
                    False,
                    f"the call failed with {err.code().name}: {found.cause}{hint}. "
                    f"An mTLS channel needs all three files: {HOW}",
                )
        return Verdict(
            name, False, "the call for user u-404 succeeded, which it never should; is this the lab's server?"
        )
    finally:
        server.stop(0)


def my_mtls_channel(address: str, ca_file: str, cert_file: str, key_file: str) -> grpc.Channel:
    """Trust the lab CA (root_certificates) and present the client's certificate and key: what mTLS asks of a caller."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(ca_file).read_bytes(),
        private_key=Path(key_file).read_bytes(),
        certificate_chain=Path(cert_file).read_bytes(),
    )
    return grpc.secure_channel(address, credentials)


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "mTLS asks two things of a client: trust the server's CA, and present a certificate of its own with "
        "its private key. `grpc.ssl_channel_credentials` takes all three, as bytes, not paths."
    ),
    (
        "`grpc.ssl_channel_credentials(root_certificates=CA, private_key=KEY, certificate_chain=CERT)`, each "
        "read with `Path(file).read_bytes()`, then `grpc.secure_channel(address, credentials)`."
    ),
)

SOLUTION = my_mtls_channel
