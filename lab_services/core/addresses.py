"""Read the addresses a learner passes in: a Consul agent's HTTP address, etcd's client endpoints, any host:port.

    consul_http_address("http://127.0.0.1:8500")        # ('127.0.0.1', 8500)
    etcd_endpoints("127.0.0.1:2379,127.0.0.1:22379")    # [('127.0.0.1', 2379), ('127.0.0.1', 22379)]

Every function takes 'host:port' with or without 'http://' (the lab's servers speak plain HTTP), so each place
that takes an address accepts the same spellings, and raises BadInputError naming the argument and the value.
Whether the lab may use the host is `core.network.require_lab_host`'s question, asked where the lab connects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from lab_services.core.errors import BadInputError

CONSUL_HTTP_EXAMPLE = "127.0.0.1:8500"
ETCD_ENDPOINT_EXAMPLE = "127.0.0.1:2379"


def host_port(address: str, field: str, example: str) -> tuple[str, int]:
    """'127.0.0.1:8500' or 'http://127.0.0.1:8500/' -> ('127.0.0.1', 8500); BadInputError naming `field` otherwise."""
    text = address.strip() if isinstance(address, str) else ""
    scheme, sep, rest = text.partition("://")
    host, _, port = (rest if sep else text).rstrip("/").rpartition(":")
    plain_http = not sep or scheme.lower() == "http"
    if plain_http and host and "/" not in host and port.isascii() and port.isdigit() and 1 <= int(port) <= 65535:
        return host, int(port)
    raise BadInputError(f"invalid argument: {field}: {address!r} is not host:port, e.g. {example!r}")


def consul_http_address(address: str, field: str = "consul_http") -> tuple[str, int]:
    """A Consul agent's HTTP address, '127.0.0.1:8500' or 'http://127.0.0.1:8500' -> ('127.0.0.1', 8500)."""
    return host_port(address, field, CONSUL_HTTP_EXAMPLE)


def consul_http_addresses(addresses: str | Iterable[str], field: str = "consul_http") -> list[tuple[str, int]]:
    """Several agents' HTTP addresses, as a list or one comma-separated string; at least one."""
    return _several(addresses, field, consul_http_address, "Consul HTTP address", CONSUL_HTTP_EXAMPLE)


def etcd_endpoint(endpoint: str, field: str = "endpoints") -> tuple[str, int]:
    """One etcd member's client endpoint, '127.0.0.1:2379' or 'http://127.0.0.1:2379' -> ('127.0.0.1', 2379)."""
    return host_port(endpoint, field, ETCD_ENDPOINT_EXAMPLE)


def etcd_endpoints(endpoints: str | Iterable[str], field: str = "endpoints") -> list[tuple[str, int]]:
    """etcd client endpoints, as a list or one comma-separated string (as on the command line); at least one."""
    return _several(endpoints, field, etcd_endpoint, "etcd endpoint", ETCD_ENDPOINT_EXAMPLE)


def _several(
    addresses: str | Iterable[str],
    field: str,
    parse: Callable[[str, str], tuple[str, int]],
    what: str,
    example: str,
) -> list[tuple[str, int]]:
    items = addresses.split(",") if isinstance(addresses, str) else list(addresses)
    items = [item.strip() if isinstance(item, str) else item for item in items]
    items = [item for item in items if item != ""]
    if not items:
        raise BadInputError(f"invalid argument: {field}: need at least one {what}, e.g. {example!r}")
    return [parse(item, f"{field}[{i}]") for i, item in enumerate(items)]
