"""Explain a failed gRPC call over TLS: which of the usual TLS mistakes it was, and how to fix it.

    try:
        stub.GetUser(request, timeout=2, wait_for_ready=False)
    except grpc.RpcError as err:
        print(explain(err, client_tls=True, client_cert=False))

Every TLS failure reaches a Python client as UNAVAILABLE ("failed to connect to all addresses"); the text
after "last error:" is what tells them apart. Client-side checks (unknown CA, hostname, expiry, talking
TLS to a plaintext port) carry the BoringSSL reason. Checks the *server* makes (missing client
certificate, client certificate from another CA, a plaintext client) all look the same to the client:
with TLS 1.3 the client finishes its half of the handshake before the server judges its certificate, so
all it ever sees is "Socket closed". For those, `explain` uses what the caller knows about its own
channel (`client_tls`, `client_cert`) or the server's log (`server_log`), and otherwise says it cannot tell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc

UNKNOWN_CA = "unknown CA"
HOSTNAME_MISMATCH = "hostname/SAN mismatch"
EXPIRED = "expired certificate"
CLIENT_CERT_MISSING = "client certificate missing under mTLS"
CLIENT_CERT_OTHER_CA = "client certificate from another CA"
PLAINTEXT_TO_TLS = "plaintext client to a TLS server"
TLS_TO_PLAINTEXT = "TLS client to a plaintext server"
SERVER_CLOSED = "server closed the connection during the handshake"
UNKNOWN = "unknown"

FIXES = {
    UNKNOWN_CA: "the server's certificate was not signed by the CA this client trusts; "
    "pass the lab CA: client_credentials(material.ca) or channel(address, material)",
    HOSTNAME_MISMATCH: "the address you dialled is not among the server certificate's SANs; "
    "dial 127.0.0.1 or localhost, or make the certificate with make_server_cert(..., hosts=[...])",
    EXPIRED: "a certificate's validity has ended (or not yet begun); make a fresh one, e.g. "
    "make_server_cert(ca, dir, days=30), and check the machine's clock",
    CLIENT_CERT_MISSING: "the server requires client certificates (mTLS); "
    "connect with channel(address, material, mtls=True) or client_credentials(ca, material.client)",
    CLIENT_CERT_OTHER_CA: "the server does not trust the CA that signed the client certificate; "
    "use a client certificate from the server's CA (material.client), or start the server with --tls-ca of that CA",
    PLAINTEXT_TO_TLS: "the server only speaks TLS; use grpc.secure_channel, e.g. channel(address, material)",
    TLS_TO_PLAINTEXT: "the server speaks plaintext; use grpc.insecure_channel(address), or start the server "
    "with --tls-cert/--tls-key",
    SERVER_CLOSED: "the server ended the handshake, and the client alone cannot tell why: a plaintext client, "
    "a missing client certificate, or a client certificate the server does not accept; pass client_tls= and "
    "client_cert= to explain(), or read the server's log (server_log=)",
    UNKNOWN: "not one of the TLS mistakes this lesson covers; read `detail`",
}

# What the client's own handshake reports (BoringSSL reasons and gRPC's hostname check), in gRPC 1.85.
CLIENT_SIDE = (
    (TLS_TO_PLAINTEXT, ("WRONG_VERSION_NUMBER",)),
    (EXPIRED, ("certificate has expired", "certificate is not yet valid")),
    (UNKNOWN_CA, ("unable to get local issuer certificate", "self signed certificate", "self-signed certificate")),
    (HOSTNAME_MISMATCH, ("Hostname Verification Check failed", "is not in peer certificate")),
)
# What a gRPC server logs (at its default verbosity) when it rejects a handshake. CERTIFICATE_VERIFY_FAILED
# also covers an expired client certificate or one without clientAuth; the fix is the same.
SERVER_LOG = (
    (CLIENT_CERT_MISSING, "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
    (PLAINTEXT_TO_TLS, "WRONG_VERSION_NUMBER"),
    (CLIENT_CERT_OTHER_CA, "CERTIFICATE_VERIFY_FAILED"),
)
SOCKET_CLOSED = "Socket closed"


@dataclass(frozen=True)
class Explanation:
    """Why a call failed: `cause` is one of the constants above, `detail` the error text it was read from.

    `candidates` lists the causes that remain possible when the client could not tell them apart.
    """

    cause: str
    fix: str
    code: grpc.StatusCode | None
    detail: str
    candidates: tuple[str, ...] = ()

    def __str__(self) -> str:
        code = self.code.name if self.code else "no status"
        return f"{self.cause} ({code}): {self.fix}"


def explain(
    err: grpc.RpcError | Exception,
    *,
    client_tls: bool | None = None,
    client_cert: bool | None = None,
    server_log: str | None = None,
) -> Explanation:
    """Map a failed call to the TLS mistake behind it.

    `client_tls` (did this client use a secure channel?) and `client_cert` (did it present a
    certificate?) settle the cases only the server can see; so does `server_log`, the server's stderr.
    """
    code, detail = _code_and_text(err)
    for cause, needles in CLIENT_SIDE:
        if any(n in detail for n in needles):
            return _explanation(cause, code, detail)
    if code != grpc.StatusCode.UNAVAILABLE or SOCKET_CLOSED not in detail:
        return _explanation(UNKNOWN, code, detail)
    if server_log:
        cause = _last_server_rejection(server_log)
        if cause:
            return _explanation(cause, code, detail)
    if client_tls is False:
        return _explanation(PLAINTEXT_TO_TLS, code, detail)
    if client_tls and client_cert is False:
        return _explanation(CLIENT_CERT_MISSING, code, detail)
    if client_tls and client_cert:
        # An expired client certificate or one without clientAuth is also refused this way; another CA is the
        # case this lesson sets up, and the fix (a certificate from the server's CA) covers all three.
        return _explanation(CLIENT_CERT_OTHER_CA, code, detail)
    candidates = (PLAINTEXT_TO_TLS, CLIENT_CERT_MISSING, CLIENT_CERT_OTHER_CA)
    return Explanation(SERVER_CLOSED, FIXES[SERVER_CLOSED], code, detail, candidates)


def _code_and_text(err: BaseException) -> tuple[grpc.StatusCode | None, str]:
    if isinstance(err, grpc.RpcError) and hasattr(err, "code"):
        details = err.details() or ""
        debug = err.debug_error_string() if hasattr(err, "debug_error_string") else ""
        # The debug string normally repeats the details with more context; keep both if it does not.
        return err.code(), debug if details in debug else f"{details} {debug}".strip()
    return None, f"{type(err).__name__}: {err}"


def _last_server_rejection(log: str) -> str | None:
    """The cause behind the last handshake failure in a gRPC server's log, if it logged one."""
    failures = re.findall(r"Handshake failed with error .*", log)
    for line in reversed(failures):
        for cause, needle in SERVER_LOG:
            if needle in line:
                return cause
    return None


def _explanation(cause: str, code: grpc.StatusCode | None, detail: str) -> Explanation:
    return Explanation(cause, FIXES[cause], code, detail)
