"""TLS for the lab's gRPC calls: certificates and credentials (`material`), what a failed handshake means (`explain`).

from lab_services.tls import TLSMaterial, channel
from lab_services.tls.explain import explain
"""

from lab_services.tls.material import (
    DEFAULT_HOSTS,
    CertPair,
    ServerTLS,
    TLSMaterial,
    channel,
    client_credentials,
    make_ca,
    make_client_cert,
    make_server_cert,
    san_names,
    server_credentials,
)

__all__ = [
    "DEFAULT_HOSTS",
    "CertPair",
    "ServerTLS",
    "TLSMaterial",
    "channel",
    "client_credentials",
    "make_ca",
    "make_client_cert",
    "make_server_cert",
    "san_names",
    "server_credentials",
]
