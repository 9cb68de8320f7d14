"""The one address parser: Consul's HTTP address and etcd's endpoints, with or without http://, or one clear error."""

from __future__ import annotations

import pytest

from lab_services.core.addresses import consul_http_address, consul_http_addresses, etcd_endpoint, etcd_endpoints
from lab_services.core.errors import BadInputError
from lab_services.core.etcd_gateway import EtcdGateway
from lab_services.discovery import ConsulWatcher, EtcdWatcher
from lab_services.registry.consul_health import ConsulHealth
from lab_services.service.config_store import open_store


@pytest.mark.parametrize(
    "text", ["127.0.0.1:8500", "http://127.0.0.1:8500", "HTTP://127.0.0.1:8500/", " 127.0.0.1:8500 "]
)
def test_a_consul_address_is_host_and_port_with_or_without_http(text):
    assert consul_http_address(text) == ("127.0.0.1", 8500)


@pytest.mark.parametrize(
    "text",
    [
        "nowhere",
        "127.0.0.1",
        "127.0.0.1:",
        ":8500",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:85OO",
        "127.0.0.1:²",
        "https://127.0.0.1:8500",
        "http://127.0.0.1:8500/v1/agent",
        "",
        None,
    ],
)
def test_anything_else_is_refused_naming_the_argument_and_the_value(text):
    with pytest.raises(BadInputError) as caught:
        consul_http_address(text, "consul")
    assert str(caught.value) == f"invalid argument: consul: {text!r} is not host:port, e.g. '127.0.0.1:8500'"
    assert isinstance(caught.value, ValueError)


def test_etcd_endpoints_come_as_a_list_or_as_the_command_line_writes_them():
    expected = [("127.0.0.1", 2379), ("127.0.0.2", 2379)]
    assert etcd_endpoints("127.0.0.1:2379,http://127.0.0.2:2379") == expected
    assert etcd_endpoints(["127.0.0.1:2379", " 127.0.0.2:2379 "]) == expected
    assert etcd_endpoints("127.0.0.1:2379") == [("127.0.0.1", 2379)]
    assert etcd_endpoint("http://127.0.0.1:2379") == ("127.0.0.1", 2379)
    assert consul_http_addresses(("127.0.0.1:8500", "127.0.0.2:8500")) == [("127.0.0.1", 8500), ("127.0.0.2", 8500)]


def test_a_bad_endpoint_is_named_by_its_place_and_none_at_all_is_refused():
    with pytest.raises(BadInputError, match=r"^invalid argument: endpoints\[1\]: '127.0.0.2' is not host:port"):
        etcd_endpoints(["127.0.0.1:2379", "127.0.0.2"])
    for nothing in ([], "", " , "):
        with pytest.raises(BadInputError, match=r"^invalid argument: endpoints: need at least one etcd endpoint"):
            etcd_endpoints(nothing)
    with pytest.raises(BadInputError, match=r"^invalid argument: consul_http: need at least one Consul HTTP address"):
        consul_http_addresses([])


def test_the_clients_take_the_same_spellings():
    assert ConsulWatcher("user", "http://127.0.0.1:8500").server == "127.0.0.1:8500"
    assert ConsulWatcher("user", "127.0.0.1:8500,127.0.0.2:8500").servers == [("127.0.0.1", 8500), ("127.0.0.2", 8500)]
    assert EtcdWatcher("user", "127.0.0.1:2379,127.0.0.2:2379").endpoints == [("127.0.0.1", 2379), ("127.0.0.2", 2379)]
    assert ConsulHealth("http://127.0.0.1:8500").client.http.base_uri == "http://127.0.0.1:8500"
    assert EtcdGateway("http://127.0.0.1:2379/").endpoint == "127.0.0.1:2379"
    assert open_store("consul", "http://127.0.0.1:8500", "config/user").address == "127.0.0.1:8500"
    assert open_store("etcd", "127.0.0.1:2379,127.0.0.2:2379", "config/user").endpoints == [
        "127.0.0.1:2379",
        "127.0.0.2:2379",
    ]
    with pytest.raises(BadInputError, match=r"address: '10\.0\.0\.1' is not a lab address"):
        open_store("consul", "10.0.0.1:8500", "config/user")
