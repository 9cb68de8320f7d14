"""The functions that replaced long notebook cells: 03's blocking query, 04's lease control, 06's tables, 07's token
demo and plot, 08's wait for rates, and the refusal tables of 02 and 07."""

from __future__ import annotations

import consul
import grpc
import pytest

from lab_services.core.addresses import consul_http_address, etcd_endpoints
from lab_services.core.instance import ServiceInstance
from lab_services.core.wait import WaitTimeout, wait_until
from lab_services.lessons.blocking_query import time_a_blocking_query
from lab_services.lessons.refusals import refusals
from lab_services.lessons.resilience.auth import TokenProtectedServer, create_through
from lab_services.lessons.resilience.measure import plot_latencies
from lab_services.lessons.scrapes import wait_for_rates
from lab_services.lessons.tls_catalogue import certificate_table, failure_cases, failure_catalogue
from lab_services.lessons.widgets import LeaseControl
from lab_services.registry import EtcdRegistrar, RegistrationError, ServiceRegistration
from lab_services.registry.etcd import etcd_client
from lab_services.resilience import retry_service_config
from lab_services.resilience.interceptors import BearerToken, ClientStats
from lab_services.service import UserServer, user_pb2, user_pb2_grpc
from lab_services.tls import TLSMaterial
from lab_services.tls import explain as causes

EXPECTED = {
    "unknown CA": causes.UNKNOWN_CA,
    "wrong SAN": causes.HOSTNAME_MISMATCH,
    "wrong server name": causes.HOSTNAME_MISMATCH,
    "expired certificate": causes.EXPIRED,
    "TLS client, plaintext server": causes.TLS_TO_PLAINTEXT,
    "plaintext client, TLS server": causes.PLAINTEXT_TO_TLS,
    "mTLS, no client certificate": causes.CLIENT_CERT_MISSING,
    "mTLS, client certificate from another CA": causes.CLIENT_CERT_OTHER_CA,
}


def test_the_failure_catalogue_fails_every_case_fast_and_names_its_cause(tmp_path):
    material = TLSMaterial.create(tmp_path)
    assert list(failure_cases(material)) == list(EXPECTED)
    catalogue, errors = failure_catalogue(material, call_timeout=3.0)
    assert {row["case"]: row["cause"] for row in catalogue} == EXPECTED
    # Each fails on its handshake (UNAVAILABLE), not by running out its 3 s deadline (DEADLINE_EXCEEDED): how fast
    # is for a benchmark to say, not a test.
    assert all(row["failed"] and row["code"] == "UNAVAILABLE" for row in catalogue), catalogue.rows
    assert all(isinstance(err, grpc.RpcError) for err in errors.values())


def test_only_the_right_bearer_token_gets_through():
    with TokenProtectedServer("s3cret") as server:
        assert create_through(server.address).startswith("UNAUTHENTICATED")
        assert create_through(server.address, BearerToken("guess")).startswith("UNAUTHENTICATED")
        assert create_through(server.address, BearerToken("s3cret")).startswith("OK, created u-")


def test_client_latencies_plot_with_their_p95():
    server = UserServer(name="plot").start()
    stats = ClientStats()
    try:
        with grpc.intercept_channel(grpc.insecure_channel(server.address), stats) as channel:
            stub = user_pb2_grpc.UserServiceStub(channel)
            for n in range(5):
                stub.CreateUser(user_pb2.CreateUserRequest(name="Plot", email=f"plot{n}@example.org"), timeout=2)
    finally:
        server.stop(0)
    figure = plot_latencies(stats, "/lab.user.v1.UserService/CreateUser")
    assert figure.axes[0].get_title() == "CreateUser: {'OK': 5}"


def test_lease_control_stops_keepalives_and_registers_again(lab):
    endpoints = lab.status().etcd.endpoints
    server = UserServer(name="lease-test").start()
    registration = ServiceRegistration(
        ServiceInstance(id=server.instance_id, name="lease-test", host="127.0.0.1", port=server.port)
    )
    control = LeaseControl(
        EtcdRegistrar(registration, endpoints=endpoints, lease_ttl=2).start(), registration, endpoints
    )
    etcd = etcd_client(etcd_endpoints(endpoints), 2.0)
    first = control.registrar
    try:
        assert first.wait_registered(5)
        control.stop_button.click()
        assert "keepalive stopped" in control.state.value
        wait_until(lambda: etcd.get(first.key)[0] is None, 6, f"{first.key} to expire with its lease")
        control.ttl_slider.value = 3
        control.register_button.click()
        assert control.registrar is not first and control.registrar.lease_ttl == 3
        assert etcd.get(control.registrar.key)[0] is not None and "TTL 3 s" in control.state.value
    finally:
        control.registrar.stop()
        server.stop(0)
        etcd.close()


def test_the_certificate_table_names_each_certificate_and_its_sans(tmp_path):
    table = certificate_table(TLSMaterial.create(tmp_path))
    by_name = {row["certificate"]: row for row in table}
    assert by_name["server"]["SANs"] == "127.0.0.1, localhost" and by_name["CA"]["SANs"] == "-"
    assert by_name["server with a wrong SAN"]["SANs"] == "wrong.example.test"
    assert by_name["client of the other CA"]["issuer"] == by_name["other CA"]["subject"]


def test_refusals_tabulate_each_refused_change_and_skip_accepted_ones():
    table = refusals(
        {"six attempts": {"max_attempts": 6}, "fine": {"max_attempts": 3}},
        retry_service_config,
        ValueError,
        label="mistake",
    )
    assert [row["mistake"] for row in table] == ["six attempts"] and "max_attempts" in table[0]["error"]
    registration = ServiceRegistration(ServiceInstance(id="user-1", name="user", host="127.0.0.1", port=5001))
    table = refusals(
        {"a name with a space": {"name": "user service"}},
        lambda **change: registration.replace(**change).validate(),
        RegistrationError,
    )
    assert table[0]["field"] == "name" and table[0]["attempt"] == "a name with a space"


def test_a_parked_blocking_query_returns_soon_after_the_change(consul_node):
    host, port = consul_http_address(consul_node.http)
    parked = time_a_blocking_query(consul.Consul(host=host, port=port), "blocking-test")
    assert parked.index_after != parked.index_before and parked.ids == ["blocking-test-1"]
    assert 0 <= parked.ms < 1000, parked
    assert consul_node.service("blocking-test-1") is None, "the demo instance is deregistered again"


def test_wait_for_rates_says_what_prometheus_showed_when_the_rates_never_come(lab):
    url = lab.status().prometheus.url
    with pytest.raises(
        WaitTimeout, match=r"waited 2 s for Prometheus to show 99 instances' call rates, latencies, but rates"
    ):
        wait_for_rates(url, 99, timeout=2)
