"""Lesson exercises: a checker per exercise that says right or wrong and why, and a solution an instructor can reveal.

    verdict = check("02-ttl", my_ttl_registration, server=server, consul_http=CONSUL)
    print(solution("02-ttl"))
"""
from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass
from html import escape
from typing import Any, Callable

from lab_services.consul_health import ConsulHealth
from lab_services.registry.base import Registrar
from lab_services.runtime.cluster import Cluster


@dataclass(frozen=True)
class Verdict:
    """The outcome of a checker: `ok`, and a sentence saying what was right or what to change."""

    exercise: str
    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"{'✔ right' if self.ok else '✘ not yet'} ({self.exercise}): {self.message}"

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#cf222e"
        return f"<p style='color:{colour}'><b>{'✔ right' if self.ok else '✘ not yet'}</b> ({self.exercise}): {escape(self.message)}</p>"


def _check_leader(answer: Any, cluster: Cluster) -> Verdict:
    """00-leader: `answer` is the process name of the Consul server that leads right now."""
    leader = cluster.status()["consul"]["leader"]
    if answer is None or answer is Ellipsis:
        return Verdict("00-leader", False, "set `answer` to a process name such as 'consul-2'")
    if answer != leader:
        return Verdict("00-leader", False, f"{answer!r} is not the leader; look for the ★ in the overview, or at status()['consul']")
    return Verdict("00-leader", True, f"{leader} leads the Consul servers; the others forward writes to it")


def _check_import(summary: Any) -> Verdict:
    """01-import: an ImportSummary from one ImportUsers call of three users, exactly one of them invalid."""
    if summary is None or not hasattr(summary, "imported"):
        return Verdict("01-import", False, "return the ImportSummary that stub.ImportUsers(...) answers")
    rejected = list(summary.rejected)
    if summary.imported != 2 or len(rejected) != 1:
        return Verdict("01-import", False, f"expected 2 imported and 1 rejected, got {summary.imported} imported and "
                       f"{len(rejected)} rejected; send three records in one call, one with an empty name or a bad email "
                       "(and use emails no earlier run used)")
    reason = rejected[0].reason
    if not reason.split(":")[0] in ("name", "email"):
        return Verdict("01-import", False, f"the record was rejected for {reason!r}, not for a bad field; make one record invalid")
    return Verdict("01-import", True, f"one call, three records: record {rejected[0].index} was refused ({reason}) and the rest kept")


def _check_ttl(register: Callable[..., Any], server: Any, consul_http: str, hold: float = 6.0) -> Verdict:
    """02-ttl: `register(server, consul_http)` registers the server with a 5 s TTL check, keeps it passing, returns the registrar."""
    name = "02-ttl"
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


_CHECKERS: dict[str, Callable[..., Verdict]] = {
    "00-leader": _check_leader,
    "01-import": _check_import,
    "02-ttl": _check_ttl,
}

_SOLUTIONS = {
    "00-leader": """
        answer = cluster.status()["consul"]["leader"]
    """,
    "01-import": """
        import uuid

        def import_three(stub):
            tag = uuid.uuid4().hex[:8]
            records = [
                user_pb2.CreateUserRequest(name="Grace", email=f"grace-{tag}@example.com"),
                user_pb2.CreateUserRequest(name="", email=f"nobody-{tag}@example.com"),
                user_pb2.CreateUserRequest(name="Linus", email=f"linus-{tag}@example.com"),
            ]
            return stub.ImportUsers(iter(records))
    """,
    "02-ttl": """
        from lab_services.registry.consul import ConsulRegistrar
        from lab_services.registry.spec import CheckSpec, ServiceRegistration

        def my_ttl_registration(server, consul_http):
            registration = ServiceRegistration(
                name="exercise", service_id=f"exercise-{server.port}", address="127.0.0.1", port=server.port,
                checks=[CheckSpec("ttl", ttl="5s")],
            )
            return ConsulRegistrar(registration, consul_http=consul_http).start()
    """,
}


def names() -> list[str]:
    return sorted(_CHECKERS)


def check(exercise: str, *args: Any, **kwargs: Any) -> Verdict:
    """Run the checker of `exercise` (e.g. "02-ttl") on the learner's answer; see each lesson for its arguments."""
    if exercise not in _CHECKERS:
        raise KeyError(f"no exercise named {exercise!r}; the exercises are {', '.join(names())}")
    return _CHECKERS[exercise](*args, **kwargs)


def solution(exercise: str) -> str:
    """The code of one way to solve `exercise`, as text to print (or to exec, as the tests do)."""
    if exercise not in _SOLUTIONS:
        raise KeyError(f"no exercise named {exercise!r}; the exercises are {', '.join(names())}")
    return textwrap.dedent(_SOLUTIONS[exercise]).strip() + "\n"
