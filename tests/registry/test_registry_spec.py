"""Unit tests: registration validation, durations, check definitions, backoff; no servers needed."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from lab_services.core.errors import BadInputError
from lab_services.core.instance import ServiceInstance
from lab_services.registry import (
    Backoff,
    CheckSpec,
    ConsulRegistrar,
    EtcdRegistrar,
    RegistrationError,
    ServiceRegistration,
)
from lab_services.registry.consul import consul_checks


def registration(**changes) -> ServiceRegistration:
    """A valid registration with `changes`, to the instance's fields or the registration's own."""
    return ServiceRegistration(
        ServiceInstance("user-5001", "user", "127.0.0.1", 5001, ("v1",), {"version": "v1", "metrics_port": "9101"}),
        http_port=9101,
        checks=(
            CheckSpec(kind="grpc", interval="1s", timeout="1s", deregister_critical_after=None),
            CheckSpec(kind="ttl", ttl="3s"),
            CheckSpec(kind="http"),
            CheckSpec(kind="tcp", deregister_critical_after="1m30s"),
        ),
    ).replace(**changes)


def test_valid_registrations_pass():
    registration().validate()
    registration(checks=()).validate()  # zero checks is allowed
    registration(host="127.0.0.3", http_port=None, checks=(CheckSpec(kind="tcp"),)).validate()
    registration(checks=(CheckSpec(kind="ttl", ttl="2s", status="critical"),)).validate()
    registration(checks=(CheckSpec(kind="grpc", grpc_service="lab.user.v1.UserService", grpc_use_tls=True),)).validate()


def test_error_message_names_field_and_fix():
    bad = registration(checks=(CheckSpec(kind="grpc"), CheckSpec(kind="ttl", ttl="3x")))
    with pytest.raises(RegistrationError) as info:
        bad.validate()
    assert str(info.value) == "invalid argument: checks[1].ttl: '3x' is not a duration (use e.g. '3s', '500ms', '1m')"
    assert info.value.field == "checks[1].ttl"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"name": ""}, "name", "not a service name"),
        ({"name": "user_svc"}, "name", "letters, digits and dashes"),
        ({"name": "-user"}, "name", "no leading"),
        ({"name": "u" * 64}, "name", "at most 63"),
        ({"id": ""}, "id", "must not be empty"),
        ({"id": "user/5001"}, "id", "only letters"),
        ({"host": "10.0.0.1"}, "host", "only uses loopback"),
        ({"host": "localhost"}, "host", "127.0.0.0/8"),
        ({"host": "::1"}, "host", "127.0.0.0/8"),
        ({"port": 0}, "port", "1..65535"),
        ({"port": 70000}, "port", "1..65535"),
        ({"port": "5001"}, "port", "1..65535"),
        ({"http_port": 65536}, "http_port", "1..65535"),
        ({"tags": ("v1", "")}, "tags[1]", "non-empty"),
        ({"meta": {"bad key": "x"}}, "meta['bad key']", "Consul's rule"),
        ({"meta": {"consul-x": "x"}}, "meta['consul-x']", "reserved"),
        ({"meta": {"port": 9101}}, "meta['port']", "must be a string"),
        ({"meta": {"k": "v" * 513}}, "meta['k']", "512"),
        ({"meta": {f"k{i}": "v" for i in range(65)}}, "meta", "64"),
        ({"checks": (CheckSpec(kind="script"),)}, "checks[0].kind", "'http', 'tcp', 'grpc', 'ttl'"),
        ({"checks": (CheckSpec(kind="ttl"),)}, "checks[0].ttl", "needs ttl"),
        ({"checks": (CheckSpec(kind="ttl", ttl="500ms"),)}, "checks[0].ttl", "1s minimum"),
        ({"checks": (CheckSpec(kind="tcp", ttl="3s"),)}, "checks[0].ttl", "only applies"),
        ({"checks": (CheckSpec(kind="tcp", interval="0s"),)}, "checks[0].interval", "longer than zero"),
        ({"checks": (CheckSpec(kind="tcp", interval="soon"),)}, "checks[0].interval", "not a duration"),
        ({"checks": (CheckSpec(kind="grpc", timeout="0s"),)}, "checks[0].timeout", "longer than zero"),
        (
            {"checks": (CheckSpec(kind="grpc", deregister_critical_after="0s"),)},
            "checks[0].deregister_critical_after",
            "longer than zero",
        ),
        (
            {"http_port": None, "checks": (CheckSpec(kind="http"),)},
            "checks[0].kind",
            "needs the registration's http_port",
        ),
        ({"checks": (CheckSpec(kind="http", http_path="health"),)}, "checks[0].http_path", "start with '/'"),
        ({"checks": (CheckSpec(kind="grpc", grpc_service="a/b"),)}, "checks[0].grpc_service", "gRPC service name"),
        ({"checks": (CheckSpec(kind="ttl", ttl="3s", status="ok"),)}, "checks[0].status", "'passing'"),
        ({"checks": ("grpc",)}, "checks[0]", "not a CheckSpec"),
    ],
)
def test_refusals_name_the_field(changes, field, words):
    with pytest.raises(RegistrationError) as info:
        registration(**changes).validate()
    assert info.value.field == field
    assert words in info.value.reason
    assert str(info.value).startswith(f"invalid argument: {field}: ")


def test_registration_is_frozen_and_copies_meta():
    meta = {"version": "v1"}
    reg = registration(meta=meta, tags=["v1"])
    meta["version"] = "v2"
    assert reg.instance.meta == {"version": "v1"}
    assert reg.instance.tags == ("v1",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        reg.instance.port = 5002  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        reg.http_port = 9102  # type: ignore[misc]
    hash(reg)


def test_check_ids_are_stable_and_readable():
    reg = registration(
        checks=(CheckSpec(kind="grpc"), CheckSpec(kind="ttl", ttl="3s"), CheckSpec(kind="grpc", grpc_service="x"))
    )
    assert reg.check_ids() == ["service:user-5001:grpc", "service:user-5001:ttl", "service:user-5001:grpc-2"]


def test_consul_check_definitions():
    by_id = {c["CheckID"]: c for c in consul_checks(registration())}
    assert by_id["service:user-5001:grpc"]["grpc"] == "127.0.0.1:5001"
    assert by_id["service:user-5001:grpc"]["timeout"] == "1s"
    assert by_id["service:user-5001:ttl"] == {
        "ttl": "3s",
        "CheckID": "service:user-5001:ttl",
        "Name": "TTL heartbeat within 3s",
        "Status": "passing",
    }
    assert by_id["service:user-5001:http"]["http"] == "http://127.0.0.1:9101/health"
    assert by_id["service:user-5001:tcp"]["tcp"] == "127.0.0.1:5001"
    assert by_id["service:user-5001:tcp"]["DeregisterCriticalServiceAfter"] == "1m30s"
    tls = consul_checks(
        registration(checks=(CheckSpec(kind="grpc", grpc_service="svc", grpc_use_tls=True, tls_skip_verify=True),))
    )[0]
    assert tls["grpc"] == "127.0.0.1:5001/svc"
    assert tls["GRPCUseTLS"] is True and tls["TLSSkipVerify"] is True


def test_registrars_validate_before_anything_happens():
    bad = registration(port=0)
    with pytest.raises(RegistrationError, match="port"):
        ConsulRegistrar(bad, consul_http="127.0.0.1:1")
    with pytest.raises(RegistrationError, match="port"):
        EtcdRegistrar(bad, endpoints=["127.0.0.1:1"])
    with pytest.raises(RegistrationError) as info:
        EtcdRegistrar(registration(), endpoints=["127.0.0.1:1"], lease_ttl=1)
    assert info.value.field == "lease_ttl"
    # The servers' addresses are not part of the registration: core.addresses refuses them, naming the argument.
    with pytest.raises(BadInputError, match=r"^invalid argument: endpoints\[0\]: '127.0.0.1' is not host:port"):
        EtcdRegistrar(registration(), endpoints=["127.0.0.1"])
    with pytest.raises(BadInputError, match=r"^invalid argument: consul_http: 'nowhere' is not host:port"):
        ConsulRegistrar(registration(), consul_http="nowhere")


def test_backoff_full_jitter_stays_under_a_capped_exponential_ceiling():
    backoff = Backoff(base=0.1, cap=2.0, rng=random.Random(1))
    assert [backoff.ceiling(n) for n in range(7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
    delays = list(itertools.islice(backoff, 200))
    assert all(0 <= d <= backoff.ceiling(n) for n, d in enumerate(delays))
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule
    assert max(delays[10:]) > 1.0  # and it does grow towards the cap
    assert backoff.attempt == 200 and backoff.ceiling(10_000) == 2.0
    backoff.reset()
    assert next(backoff) <= 0.1
    with pytest.raises(ValueError):
        Backoff(base=0)


def test_an_interval_below_one_second_warns_as_consul_does_and_is_not_refused():
    """Consul 1.8 accepts a 500 ms interval, runs the check every second and logs 'check has interval below minimum'."""
    from lab_services.registry.spec import ConsulRaises

    check = CheckSpec(kind="grpc", interval="500ms")
    with pytest.warns(
        ConsulRaises,
        match=(
            r"checks\[0\]\.interval: '500ms' is below Consul's minimum of 1s: "
            r"Consul accepts it, runs the check every 1s"
        ),
    ):
        registration(checks=(check,)).validate()
    assert check.effective_interval == 1.0
    assert CheckSpec(kind="grpc", interval="3s").effective_interval == 3.0


def test_a_deregister_after_below_one_minute_is_accepted_as_consul_accepts_it():
    # Consul raises it to 1m with a warning (tests/lessons/test_agent_log.py shows the warning on a real agent).
    registration(checks=(CheckSpec(kind="grpc", deregister_critical_after="30s"),)).validate()
