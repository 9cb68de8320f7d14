"""Lesson 02's exercise: register a TTL check through py-consul itself (no lab wrapper), keep it alive with heartbeats.

The learner writes two functions: `register(client, service_id, port)` registers the service with a 5 s TTL
check, and `heartbeat(client, check_id, stop)` reports "passing" until `stop` is set. The checker runs the
heartbeat in a thread, holds longer than the TTL (only heartbeats can keep it passing that long), then stops
it, as a crash would, and expects Consul to mark the check critical within the TTL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import consul

from lab_services.core.addresses import consul_http_address
from lab_services.core.network import kernel_host
from lab_services.lessons.exercises.verdict import Verdict
from lab_services.registry.consul_health import ConsulHealth

NAME = "02-ttl"
TTL_S = 5.0
SERVICE_ID = "exercise-ttl"


def check(
    register: Callable[..., Any],
    heartbeat: Callable[..., Any],
    consul_http: str,
    port: int = 50999,
    hold: float = TTL_S + 1.0,
) -> Verdict:
    """02-ttl: `register(client, service_id, port)` adds a 5 s TTL check; `heartbeat(client, check_id, stop)` keeps
    it passing."""
    if not callable(register) or not callable(heartbeat):
        return Verdict(NAME, False, "define register(client, service_id, port) and heartbeat(client, check_id, stop)")
    host, http_port = consul_http_address(consul_http)
    client = consul.Consul(host=host, port=http_port)
    health = ConsulHealth(consul_http)
    stop = threading.Event()
    try:
        register(client, SERVICE_ID, port)
        ttl_checks = [c for c in client.agent.checks().values() if c["ServiceID"] == SERVICE_ID and c["Type"] == "ttl"]
        if SERVICE_ID not in client.agent.services():
            return Verdict(
                NAME,
                False,
                f"register() did not register {SERVICE_ID!r} with the agent; call client.agent.service.register(...)",
            )
        if not ttl_checks:
            return Verdict(
                NAME, False, f"{SERVICE_ID} has no TTL check; pass check=consul.Check.ttl('5s') to register()"
            )
        check_id = ttl_checks[0]["CheckID"]
        ttl = (health.definition(check_id) or {}).get("TTL")
        if ttl not in ("5s", "5000ms"):
            return Verdict(NAME, False, f"the TTL check's TTL is {ttl!r}; the exercise asks for 5s")
        beating = threading.Thread(
            target=heartbeat, args=(client, check_id, stop), name="learner-heartbeat", daemon=True
        )
        beating.start()
        try:
            health.wait_for(check_id, "passing", timeout=TTL_S)
        except Exception:  # a WaitTimeout: Consul starts a TTL check critical, and nothing reported it passing
            return Verdict(
                NAME,
                False,
                f"{check_id} never turned passing in the {TTL_S:g} s after heartbeat() started; "
                "call client.agent.check.ttl_pass(check_id) in its loop",
            )
        deadline = time.monotonic() + hold
        while time.monotonic() < deadline:
            status = health.status(check_id)
            if status != "passing":
                return Verdict(
                    NAME,
                    False,
                    f"{check_id} is {status!r} {hold - (deadline - time.monotonic()):.1f} s into the "
                    "heartbeat; send client.agent.check.ttl_pass(check_id) more often than every 5 s",
                )
            if not beating.is_alive():
                return Verdict(NAME, False, "heartbeat() returned before stop was set; loop until stop.is_set()")
            time.sleep(0.25)
        stopped = time.monotonic()
        stop.set()
        beating.join(TTL_S)
        if beating.is_alive():
            return Verdict(
                NAME,
                False,
                "heartbeat() kept running after stop was set; check stop.is_set() (or stop.wait()) in its loop",
            )
        try:
            took = health.wait_for(check_id, "critical", timeout=TTL_S + 2, since=stopped)
        except Exception:  # a WaitTimeout: the check never went critical, so something else keeps it alive
            return Verdict(
                NAME,
                False,
                f"{check_id} was still {health.status(check_id)!r} {TTL_S + 2:g} s after heartbeat() returned, so "
                "something else still reports it passing: a second heartbeat thread, or one your earlier runs "
                "left going (restart the kernel); only heartbeat() may call ttl_pass",
            )
        return Verdict(
            NAME,
            True,
            f"{check_id} stayed passing for {hold:g} s on your heartbeats, and went critical "
            f"{took:.1f} s after they stopped (TTL 5 s, counted from the last one)",
        )
    finally:
        stop.set()
        client.agent.service.deregister(SERVICE_ID)
        client.http.session.close()
        health.close()


def my_ttl_registration() -> tuple[Callable[..., None], Callable[..., None]]:
    """The two functions the exercise asks for, as the notebook passes them:
    `lab.check("02-ttl", *my_ttl_registration(), ...)`."""

    def register(client: consul.Consul, service_id: str, port: int) -> None:
        # A TTL check: Consul waits for the service to report in, and marks it critical when 5 s pass without a word.
        # The address is the kernel's own (lab.kernel_host() in a notebook): 127.0.0.1 on the local runtime.
        client.agent.service.register(
            "exercise", service_id=service_id, address=kernel_host(), port=port, check=consul.Check.ttl("5s")
        )

    def heartbeat(client: consul.Consul, check_id: str, stop: threading.Event) -> None:
        # Every TTL/3, so two heartbeats may be lost before the TTL runs out; stop.wait() ends the loop at once.
        while not stop.is_set():
            client.agent.check.ttl_pass(check_id)
            stop.wait(TTL_S / 3)

    return register, heartbeat


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "register: `client.agent.service.register(name, service_id=..., address=..., port=..., check=...)`, "
        'and a TTL check is `consul.Check.ttl("5s")`. Consul names the check; heartbeat is handed its id.'
    ),
    (
        "heartbeat: loop `while not stop.is_set():`, call `client.agent.check.ttl_pass(check_id)`, then wait "
        "with `stop.wait(...)` for a good deal less than the TTL (a third of it leaves room for two lost "
        "heartbeats)."
    ),
)

SOLUTION = my_ttl_registration
