"""Lesson 02's exercise: register with a 5 s TTL check and keep it passing. The checker says right or wrong and why; `my_ttl_registration` is one solution."""
from __future__ import annotations

import time
from typing import Any, Callable

from lab_services.lessons.exercises.verdict import Verdict
from lab_services.registry.base import Registrar
from lab_services.registry.consul import ConsulRegistrar
from lab_services.registry.consul_health import ConsulHealth
from lab_services.registry.spec import CheckSpec, ServiceRegistration

NAME = "02-ttl"


def check(register: Callable[..., Any], server: Any, consul_http: str, hold: float = 6.0) -> Verdict:
    """02-ttl: `register(server, consul_http)` registers the server with a 5 s TTL check, keeps it passing, returns the registrar."""
    name = NAME
    registrar = register(server, consul_http)
    if not isinstance(registrar, Registrar):
        return Verdict(name, False, f"your function returned {registrar!r}; return the registrar you started")
    health = ConsulHealth(consul_http)
    try:
        service_id = registrar.registration.service_id
        if not registrar.wait_registered(5):
            return Verdict(name, False, f"{service_id} was not registered within 5 s; did you call start()? ({registrar.last_error})")
        ttl_checks = [s for s in health.checks(service_id) if s.kind == "ttl"]
        if not ttl_checks:
            return Verdict(name, False, f"{service_id} has no TTL check in Consul; add CheckSpec('ttl', ttl='5s')")
        stored = health.definition(ttl_checks[0].check_id) or {}
        specs = [c for c in registrar.registration.checks if c.kind == "ttl"]
        ttl = stored.get("TTL") or (specs[0].ttl if specs else None)
        if ttl not in ("5s", "5000ms"):
            return Verdict(name, False, f"the TTL check's ttl is {ttl!r}; the exercise asks for 5 s")
        # Held longer than the TTL itself: only heartbeats can keep it passing that long.
        deadline = time.monotonic() + hold
        while time.monotonic() < deadline:
            status = health.status(ttl_checks[0].check_id)
            if status != "passing":
                return Verdict(name, False, f"the TTL check is {status!r}; it must be sent 'passing' before 5 s run out "
                               "(ConsulRegistrar does that every ttl/3 while it runs)")
            time.sleep(0.25)
        return Verdict(name, True, f"{ttl_checks[0].check_id} stayed passing for {hold:g} s, longer than its TTL: the heartbeats work")
    finally:
        registrar.stop()
        health.close()


def my_ttl_registration(server: Any, consul_http: str) -> ConsulRegistrar:
    """Register `server` with a 5 s TTL check; the registrar sends 'passing' every ttl/3 while it runs."""
    registration = ServiceRegistration(
        name="exercise", service_id=f"exercise-{server.port}", address="127.0.0.1", port=server.port,
        checks=[CheckSpec("ttl", ttl="5s")],
    )
    return ConsulRegistrar(registration, consul_http=consul_http).start()


SOLUTION = my_ttl_registration
