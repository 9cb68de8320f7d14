"""Lesson 04's exercise: register in etcd under a 3 s lease kept alive. The checker says right or wrong and why; `register_with_lease` is one solution."""
from __future__ import annotations

import time
from typing import Any, Callable

from lab_services.lessons.exercises.verdict import Verdict
from lab_services.registry.base import Registrar
from lab_services.registry.etcd import EtcdRegistrar, etcd_client, parse_endpoint
from lab_services.registry.spec import ServiceRegistration

NAME = "04-lease"


def check(register: Callable[..., Any], server: Any, endpoints: list[str], ttl: int = 3) -> Verdict:
    """04-lease: `register(server, endpoints)` registers the server in etcd under a 3 s lease and keeps it alive."""
    name = NAME
    registrar = register(server, endpoints)
    if not isinstance(registrar, Registrar) or registrar.backend != "etcd":
        if isinstance(registrar, Registrar):
            registrar.stop()
        return Verdict(name, False, f"your function returned {registrar!r}; return the EtcdRegistrar you started")
    client = etcd_client([parse_endpoint(e) for e in endpoints], 2.0)
    try:
        if not registrar.wait_registered(5):
            return Verdict(name, False, f"not registered within 5 s; did you call start()? ({registrar.last_error})")
        value, meta = client.get(registrar.key)
        if value is None or not meta.lease_id:
            return Verdict(name, False, f"{registrar.key} is not in etcd under a lease")
        granted = client.get_lease_info(meta.lease_id).grantedTTL
        if granted != ttl:
            return Verdict(name, False, f"the lease was granted for {granted} s; the exercise asks for {ttl} s (lease_ttl={ttl})")
        # Held longer than the TTL: only keepalives can keep the key that long.
        time.sleep(ttl + 1)
        if client.get(registrar.key)[0] is None:
            return Verdict(name, False, f"{registrar.key} vanished within {ttl + 1} s: the lease is not being kept alive")
        stopped = time.monotonic()
        registrar.stop(deregister=False)
        while client.get(registrar.key)[0] is not None:
            if time.monotonic() - stopped > ttl + 3:
                return Verdict(name, False, f"{registrar.key} outlived its lease by 3 s after the keepalives stopped")
            time.sleep(0.1)
        gone = time.monotonic() - stopped
        return Verdict(name, True, f"kept alive past its {ttl} s TTL, then gone {gone:.1f} s after the keepalives stopped")
    finally:
        # An expired lease cannot be revoked; only a registration still alive is removed.
        if registrar.registered:
            registrar.stop()
        client.close()


def register_with_lease(server: Any, endpoints: list[str]) -> EtcdRegistrar:
    """Register `server` in etcd under a 3 s lease that the registrar keeps alive."""
    registration = ServiceRegistration(name="exercise", service_id=f"exercise-{server.port}",
                                       address="127.0.0.1", port=server.port)
    return EtcdRegistrar(registration, endpoints=endpoints, lease_ttl=3).start()


SOLUTION = register_with_lease
