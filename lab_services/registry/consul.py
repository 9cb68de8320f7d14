"""Register a service instance with a Consul agent, with HTTP, TCP, gRPC and TTL checks, and keep it registered.

The agent runs the HTTP, TCP and gRPC checks itself; only TTL checks need the registrar, which reports
"passing" every ttl/3. The registration goes to the local agent (`/v1/agent/service/register`), which
syncs it to the catalog. A `-dev` agent keeps it in memory only, so after a restart the registrar notices
the service is gone and registers it again.
"""

from __future__ import annotations

import time
from typing import Any

import consul
import requests

from lab_services.core.addresses import consul_http_address
from lab_services.core.backoff import Backoff
from lab_services.core.errors import LabError
from lab_services.registry.base import Registrar
from lab_services.registry.spec import CheckSpec, ServiceRegistration

DEFAULT_CONSUL_HTTP = "127.0.0.1:8500"


def check_name(registration: ServiceRegistration, check: CheckSpec) -> str:
    """What the check does, in words the lessons show next to its status, e.g. 'gRPC health 127.0.0.1:5001'."""
    if check.kind == "http":
        return f"HTTP GET http://{registration.instance.host}:{registration.http_port}{check.http_path}"
    if check.kind == "tcp":
        return f"TCP connect {registration.instance.address}"
    if check.kind == "grpc":
        service = f" service {check.grpc_service!r}" if check.grpc_service else ""
        return f"gRPC health {registration.instance.address}{service}"
    return f"TTL heartbeat within {check.ttl}"


def consul_check(registration: ServiceRegistration, check: CheckSpec, check_id: str) -> dict[str, Any]:
    """The check definition Consul receives for one CheckSpec, built with py-consul's `Check` helpers."""
    deregister = check.deregister_critical_after
    if check.kind == "http":
        url = f"http://{registration.instance.host}:{registration.http_port}{check.http_path}"
        definition = consul.Check.http(url, check.interval, timeout=check.timeout, deregister=deregister)
    elif check.kind == "tcp":
        definition = consul.Check.tcp(
            registration.instance.host,
            registration.instance.port,
            check.interval,
            timeout=check.timeout,
            deregister=deregister,
        )
    elif check.kind == "grpc":
        target = registration.instance.address + (f"/{check.grpc_service}" if check.grpc_service else "")
        definition = consul.Check.grpc(target, check.interval, timeout=check.timeout, deregister=deregister)
        # Consul 1.8 refuses the helper's snake_case 'grpc_use_tls' ("unknown field"), so use its Go field names.
        if check.grpc_use_tls:
            definition["GRPCUseTLS"] = True
    else:
        definition = consul.Check.ttl(check.ttl)
        if deregister:
            definition["DeregisterCriticalServiceAfter"] = deregister
    if check.tls_skip_verify:
        definition["TLSSkipVerify"] = True
    definition["CheckID"] = check_id
    definition["Name"] = check_name(registration, check)
    if check.initial_status is not None:
        definition["Status"] = check.initial_status
    return definition


def consul_checks(registration: ServiceRegistration) -> list[dict[str, Any]]:
    """All check definitions of a registration, with their stable ids (see `ServiceRegistration.check_ids`)."""
    return [
        consul_check(registration, c, i) for c, i in zip(registration.checks, registration.check_ids(), strict=True)
    ]


class ConsulNotReadyError(LabError, RuntimeError):
    """The agent answers but its cluster has not elected a leader yet; retried like an unreachable agent."""


class ConsulRegistrar(Registrar):
    """Registers one instance with a Consul agent in a background thread; see `Registrar` for the lifecycle.

    >>> r = ConsulRegistrar(reg, consul_http="127.0.0.1:8500").start()
    >>> r.wait_registered(5)
    True
    >>> r.stop()          # deregisters
    """

    backend = "consul"
    unreachable_errors = (requests.ConnectionError, requests.Timeout)
    not_ready_errors = (ConsulNotReadyError,)

    def __init__(
        self,
        registration: ServiceRegistration,
        consul_http: str = DEFAULT_CONSUL_HTTP,
        *,
        verify_every: float = 1.0,
        backoff: Backoff | None = None,
        request_timeout: float = 2.0,
    ):
        super().__init__(registration, backoff)
        self.host, self.port = consul_http_address(consul_http)
        self.checks = consul_checks(registration)
        self._client = consul.Consul(host=self.host, port=self.port, connections_timeout=request_timeout)
        self._ttl_ids = [
            i for c, i in zip(registration.checks, registration.check_ids(), strict=True) if c.kind == "ttl"
        ]
        ttls = [c.ttl_seconds for c in registration.checks if c.kind == "ttl"]
        # Report in three times per TTL, so one lost heartbeat does not turn the check critical.
        self.heartbeat_every = min(ttls) / 3 if ttls else None
        self._verify_every = verify_every
        self._next_heartbeat = 0.0

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def tick(self) -> float:
        return min(self._verify_every, self.heartbeat_every or self._verify_every)

    def _register(self) -> None:
        # An agent accepts a registration before its cluster has a leader, but cannot sync it to the
        # catalog until then, and its retry waits many seconds: registering after the election is faster.
        if not self._client.status.leader():
            raise ConsulNotReadyError(f"consul at {self.where} has no raft leader yet")
        instance = self.registration.instance
        first, *extra = self.checks or [None]
        self._client.agent.service.register(
            instance.name,
            service_id=instance.id,
            address=instance.host,
            port=instance.port,
            tags=list(instance.tags),
            meta=dict(instance.meta),
            check=first,
            extra_checks=extra,
            # Registering again (after a restart or a lost heartbeat) must leave exactly these checks.
            replace_existing_checks=True,
        )
        self._next_heartbeat = 0.0

    def _keep_alive(self) -> bool:
        if self._ttl_ids and self._heartbeat_due():
            for check_id in self._ttl_ids:
                try:
                    self._client.agent.check.ttl_pass(check_id, notes="heartbeat from ConsulRegistrar")
                except consul.ConsulException:
                    # Consul answers 500 "CheckID ... does not have associated TTL" for a check it forgot.
                    return False
        return self._client.agent.service_definition(self.registration.instance.id) is not None

    def _heartbeat_due(self) -> bool:
        now = time.monotonic()
        if now < self._next_heartbeat:
            return False
        # A little early rather than a tick late: the loop's wake-ups drift by the time the calls take.
        self._next_heartbeat = now + 0.9 * (self.heartbeat_every or 0)
        return True

    def _deregister(self) -> None:
        self._client.agent.service.deregister(self.registration.instance.id)

    def _close(self) -> None:
        self._client.http.session.close()  # py-consul's close() leaves the requests session open
