"""Ask Consul's DNS for a service: SRV records (each passing instance's address and port), A records, a `dns://` target.

    srv_records("user", "127.0.0.1:8600")
    # [SrvRecord(target='7f00000b.addr.lab.consul.', address='127.0.0.11', port=5000, ...)]
    a_records("user", "127.0.0.1:8600")       # ['127.0.0.11', '127.0.0.12', '127.0.0.13']
    grpc.insecure_channel(dns_target("user", "127.0.0.1:8600", 5000), options=[("grpc.service_config", ...)])

Consul answers only for instances whose checks pass. A records carry no port, so a gRPC `dns://` client
needs every instance on its own address and one shared port (`instance_addresses="distinct"`). Over UDP
Consul returns at most three records (its `dns_config.udp_answer_limit`) without setting the truncation
bit, so these functions ask over TCP to see every instance; gRPC's resolver asks over UDP and sees three.
"""

from __future__ import annotations

from dataclasses import dataclass

# Aliased: the functions take Consul's DNS address as `dns`, which would hide the dnspython package.
from dns import exception as dns_exception
from dns import rdatatype as dns_rdatatype
from dns import resolver as dns_resolver

from lab_services.core.addresses import host_port

DEFAULT_DNS = "127.0.0.1:8600"


@dataclass(frozen=True)
class SrvRecord:
    """One SRV answer: `target` is Consul's name for the instance's address, `address` the A record it stands for."""

    target: str
    address: str | None
    port: int
    priority: int
    weight: int


def service_name(service: str, tag: str | None = None) -> str:
    """'user.service.consul', or 'v2.user.service.consul' for the instances tagged v2."""
    return f"{tag}.{service}.service.consul" if tag else f"{service}.service.consul"


def _resolve(service: str, rdtype: str, server: str, tag: str | None, timeout: float) -> dns_resolver.Answer | None:
    host, port = host_port(server, "dns", DEFAULT_DNS)
    resolver = dns_resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = port
    resolver.lifetime = timeout
    name = service_name(service, tag)
    try:
        return resolver.resolve(name, rdtype, tcp=True)
    except (dns_resolver.NXDOMAIN, dns_resolver.NoAnswer):
        return None  # Consul's way of saying that no instance of the service passes its checks
    except (dns_exception.Timeout, dns_resolver.NoNameservers) as err:
        raise TimeoutError(
            f"Consul DNS at {server} did not answer {rdtype} {name} within {timeout:g} s ({err.__class__.__name__}); "
            "`discovery-lab status` shows the lab's DNS address"
        ) from None


def srv_records(service: str, dns: str = DEFAULT_DNS, tag: str | None = None, timeout: float = 2.0) -> list[SrvRecord]:
    """The SRV records Consul answers for `service` (passing and, unless only_passing is set, warning ones), sorted."""
    answer = _resolve(service, "SRV", dns, tag, timeout)
    if answer is None:
        return []
    # Consul puts the A record of every target in the additional section, so one query suffices.
    addresses = {
        rrset.name.to_text(): rrset[0].address
        for rrset in answer.response.additional
        if rrset.rdtype == dns_rdatatype.A
    }
    records = [
        SrvRecord(r.target.to_text(), addresses.get(r.target.to_text()), r.port, r.priority, r.weight) for r in answer
    ]
    return sorted(records, key=lambda r: (r.address or "", r.port, r.target))


def a_records(service: str, dns: str = DEFAULT_DNS, tag: str | None = None, timeout: float = 2.0) -> list[str]:
    """The addresses Consul answers for `service` (as SRV: critical ones left out), sorted; they carry no port."""
    answer = _resolve(service, "A", dns, tag, timeout)
    return sorted((r.address for r in answer), key=lambda a: tuple(int(p) for p in a.split("."))) if answer else []


def dns_target(service: str, dns: str, port: int, tag: str | None = None) -> str:
    """'dns://127.0.0.1:8600/user.service.consul:5000': a gRPC target resolved by asking Consul's DNS directly.

    gRPC's default resolver (c-ares) honours the DNS server in the authority, port included; with
    GRPC_DNS_RESOLVER=native it is ignored and the system resolver fails to find `.consul` names. gRPC
    resolves once and again only when a connection closes, at most every 30 s unless the channel sets
    `grpc.dns_min_time_between_resolutions_ms`: a new instance stays unseen until then.
    """
    host, dns_port = host_port(dns, "dns", DEFAULT_DNS)
    return f"dns://{host}:{dns_port}/{service_name(service, tag)}:{int(port)}"
