"""ConsulRegistrar against a real Consul agent, with real gRPC health, HTTP and TCP targets."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from lab_services.core.instance import ServiceInstance
from lab_services.core.wait import wait_for
from lab_services.registry import Backoff, CheckSpec, ConsulRegistrar, RegistrationError, ServiceRegistration

# A timeout, returned from as soon as the agent answers: an agent started moments ago syncs its first registration
# only after it has elected itself and synced its node, which took 4.7 s under CI's full load.
REGISTERED_WITHIN = 20


@pytest.fixture(scope="module")
def agent(consul_node):
    """The module's Consul server (conftest), read through its agent API."""
    return consul_node


@pytest.fixture
def grpc_target():
    """A real gRPC server with only the standard health service; `.servicer.set('', status)` flips it."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    server.servicer, server.port = servicer, port
    yield server
    server.stop(None)


class HealthHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = self.server.health_code if self.path == "/health" else 404
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_target():
    """A side HTTP server answering GET /health with `.health_code` (200 unless a test changes it)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HealthHandler)
    server.health_code = 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def registrars():
    """Registrars a test starts; each is stopped (and deregistered) afterwards even if the test fails."""
    started: list[ConsulRegistrar] = []
    yield started
    for r in started:
        r.stop()


def make_reg(service_id: str, grpc_port: int, http_port: int | None = None, checks=(), name: str = "user"):
    return ServiceRegistration(
        ServiceInstance(
            id=service_id,
            name=name,
            host="127.0.0.1",
            port=grpc_port,
            tags=("v1",),
            meta={"version": "v1", "metrics_port": str(http_port or 9101)},
        ),
        http_port=http_port,
        checks=tuple(checks),
    )


@pytest.mark.parametrize(
    "check",
    [
        CheckSpec(kind="grpc"),
        CheckSpec(kind="http"),
        CheckSpec(kind="tcp"),
        CheckSpec(kind="ttl", ttl="3s"),
    ],
    ids=lambda c: c.kind,
)
def test_each_check_kind_alone_passes(agent, grpc_target, http_target, registrars, check):
    name = f"alone-{check.kind}"
    reg = make_reg(f"{name}-1", grpc_target.port, http_target.server_port, [check], name=name)
    r = ConsulRegistrar(reg, consul_http=agent.http)
    registrars.append(r.start())
    assert r.wait_registered(REGISTERED_WITHIN), agent.tail()
    check_id = f"service:{name}-1:{check.kind}"
    wait_for(lambda: agent.statuses(name) == {check_id: "passing"}, REGISTERED_WITHIN, f"{check_id} passing")
    service = agent.service(f"{name}-1")
    assert (service["Service"], service["Address"], service["Port"]) == (name, "127.0.0.1", grpc_target.port)
    assert service["Tags"] == ["v1"] and service["Meta"]["version"] == "v1"


def test_all_checks_together_and_health_flips(agent, grpc_target, http_target, registrars):
    checks = [CheckSpec(kind="grpc"), CheckSpec(kind="http"), CheckSpec(kind="tcp"), CheckSpec(kind="ttl", ttl="3s")]
    reg = make_reg("user-all", grpc_target.port, http_target.server_port, checks)
    registrars.append(ConsulRegistrar(reg, consul_http=agent.http).start())
    ids = {k: f"service:user-all:{k}" for k in ("grpc", "http", "tcp", "ttl")}
    wait_for(lambda: set(agent.statuses("user").items()) >= {(i, "passing") for i in ids.values()}, 5, "all passing")
    names = {cid: c["Name"] for cid, c in agent.checks("user").items()}
    assert names[ids["grpc"]] == f"gRPC health 127.0.0.1:{grpc_target.port}"
    assert names[ids["http"]] == f"HTTP GET http://127.0.0.1:{http_target.server_port}/health"

    grpc_target.servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    wait_for(lambda: agent.statuses("user")[ids["grpc"]] == "critical", 4, "gRPC check critical on NOT_SERVING")
    assert agent.statuses("user")[ids["ttl"]] == "passing"
    grpc_target.servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    wait_for(lambda: agent.statuses("user")[ids["grpc"]] == "passing", 4, "gRPC check passing again")

    http_target.health_code = 503
    wait_for(lambda: agent.statuses("user")[ids["http"]] == "critical", 4, "HTTP check critical on 503")
    http_target.health_code = 200
    wait_for(lambda: agent.statuses("user")[ids["http"]] == "passing", 4, "HTTP check passing again")


def test_ttl_passes_while_heartbeating_and_goes_critical_after_a_crash(agent, grpc_target):
    reg = make_reg("ttl-1", grpc_target.port, checks=[CheckSpec(kind="ttl", ttl="2s")], name="ttl")
    r = ConsulRegistrar(reg, consul_http=agent.http).start()
    try:
        assert r.wait_registered(REGISTERED_WITHIN), agent.tail()
        assert r.heartbeat_every == pytest.approx(2 / 3)
        # Three TTLs: without heartbeats the check would have gone critical twice over.
        for _ in range(12):
            assert agent.statuses("ttl") == {"service:ttl-1:ttl": "passing"}, agent.tail()
            time.sleep(0.5)
        r.stop(deregister=False)
        crashed = time.monotonic()
        # Returns as soon as it is critical; 10 s leaves room for a loaded machine (CI once took over 4 s).
        wait_for(lambda: agent.statuses("ttl") == {"service:ttl-1:ttl": "critical"}, 10, "TTL critical")
        assert time.monotonic() - crashed > 0.5  # it was the TTL running out, not something immediate
        assert agent.service("ttl-1") is not None  # the drill stops heartbeats but leaves the service
    finally:
        r.stop()
    assert agent.service("ttl-1") is None


def test_stop_deregisters_and_is_idempotent(agent, grpc_target):
    reg = make_reg("user-stop", grpc_target.port, checks=[CheckSpec(kind="grpc"), CheckSpec(kind="ttl", ttl="3s")])
    r = ConsulRegistrar(reg, consul_http=agent.http).start()
    assert r.wait_registered(REGISTERED_WITHIN) and r.registered
    wait_for(lambda: agent.service("user-stop"), 2, "the service in the agent")
    r.stop()
    assert not r.registered
    assert agent.service("user-stop") is None
    assert not any(cid.startswith("service:user-stop:") for cid in agent.checks("user"))
    r.stop()
    with pytest.raises(RuntimeError, match="create a new registrar"):
        r.start()


def test_bad_input_registers_nothing(agent):
    bad = make_reg("user-bad", 5001, checks=[CheckSpec(kind="grpc"), CheckSpec(kind="ttl", ttl="3x")])
    with pytest.raises(RegistrationError) as info:
        ConsulRegistrar(bad, consul_http=agent.http)
    assert info.value.field == "checks[1].ttl"
    time.sleep(0.3)
    assert agent.service("user-bad") is None
    assert "user-bad" not in (agent.get("/v1/agent/services") or {})


def test_deregister_critical_after_reaches_consul(agent, grpc_target, registrars):
    check = CheckSpec(kind="grpc", deregister_critical_after="1m30s")
    reg = make_reg("user-reap", grpc_target.port, checks=[check])
    registrars.append(ConsulRegistrar(reg, consul_http=agent.http).start())
    assert registrars[0].wait_registered(REGISTERED_WITHIN), agent.tail()

    # Consul 1.8 leaves `Definition` empty in the API, but the agent persists each check's definition
    # in its data directory; read it there rather than wait a minute and more for the reaper.
    def persisted():
        for path in (agent.data_dir / "checks").glob("*"):
            saved = json.loads(path.read_text())
            if saved["ChkType"]["CheckID"] == "service:user-reap:grpc":
                return saved["ChkType"]
        return None

    definition = wait_for(persisted, 5, "the persisted check definition")
    assert definition["DeregisterCriticalServiceAfter"] == 90 * 10**9  # nanoseconds
    assert definition["GRPC"] == f"127.0.0.1:{grpc_target.port}"
    assert definition["Interval"] == definition["Timeout"] == 10**9


def test_consul_down_at_start_then_up_then_restarted(stopped_server, grpc_target, caplog):
    """Registers once Consul appears, and again after a Consul server restarts without its data, forgetting all."""
    consul = stopped_server("consul")
    reg = make_reg("user-late", grpc_target.port, checks=[CheckSpec(kind="grpc"), CheckSpec(kind="ttl", ttl="3s")])
    r = ConsulRegistrar(reg, consul_http=consul.http, backoff=Backoff(base=0.1, cap=0.5))
    caplog.set_level(logging.INFO, logger="lab_services.registry.consul")
    try:
        r.start()
        assert not r.wait_registered(1.5)
        assert f"consul at {consul.http} unreachable, retrying in" in caplog.text
        assert r.last_error == "unreachable"

        consul.start()
        assert r.wait_registered(REGISTERED_WITHIN), consul.tail()
        wait_for(lambda: consul.statuses("user").get("service:user-late:grpc") == "passing", 5, "gRPC passing")

        consul.forget()  # the server comes back without its data: this loses the registration
        wait_for(lambda: not r.registered, 5, "the registrar to notice Consul is gone")
        consul.start()
        wait_for(lambda: consul.service("user-late"), 8, "registration again after the restart")
        assert r.wait_registered(REGISTERED_WITHIN)
        wait_for(
            lambda: (
                consul.statuses("user") == {"service:user-late:grpc": "passing", "service:user-late:ttl": "passing"}
            ),
            5,
            "both checks passing after the restart",
        )
        assert "registered user-late" in caplog.text

        consul.stop()
        started = time.monotonic()
        r.stop()  # Consul is gone: best effort, no exception, no long hang
        assert time.monotonic() - started < 5
        assert "could not deregister user-late" in caplog.text
    finally:
        r.stop()
