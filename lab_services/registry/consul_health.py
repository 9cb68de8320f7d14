"""Read Consul's view of health checks and wait for a check to reach a status, timing how long it took.

    health = ConsulHealth("127.0.0.1:8500")
    health.statuses("user-1")                          # {"service:user-1:grpc": "passing", ...}
    seconds = health.wait_for("service:user-1:grpc", "critical", timeout=10)

Checks are read from the agent the service registered with (`/v1/agent/checks`): that agent runs them, so
it knows first. Instances are read from the health API (`/v1/health/service/<name>`), the view clients use.
Polling keeps going through connection errors, so a wait also works while a lesson restarts Consul servers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import consul
import requests

from lab_services.core.addresses import consul_http_address
from lab_services.core.durations import go_duration
from lab_services.core.table import Table
from lab_services.core.wait import wait_until

STATUSES = ("passing", "warning", "critical")
# Worst first: a service is as healthy as its sickest check.
_SEVERITY = {"critical": 0, "warning": 1, "passing": 2}
_UNREACHABLE = (requests.ConnectionError, requests.Timeout, consul.ConsulException)


@dataclass(frozen=True)
class CheckState:
    """One check as Consul reports it right now."""

    check_id: str
    name: str
    status: str
    kind: str
    service_id: str
    service_name: str
    output: str

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> CheckState:
        return cls(
            raw["CheckID"],
            raw["Name"],
            raw["Status"],
            raw.get("Type", ""),
            raw.get("ServiceID", ""),
            raw.get("ServiceName", ""),
            (raw.get("Output") or "").strip(),
        )


class ConsulHealth:
    """Ask one Consul agent about checks and instances; every wait returns the seconds it took."""

    def __init__(self, consul_http: str, request_timeout: float = 2.0):
        self.consul_http = consul_http
        host, port = consul_http_address(consul_http)
        self.client = consul.Consul(host=host, port=port, connections_timeout=request_timeout)

    # -- reading -------------------------------------------------------------------------------------
    def checks(self, service_id: str | None = None) -> list[CheckState]:
        """The agent's checks (of one service instance, if given), sorted by check id."""
        states = [CheckState.from_api(raw) for raw in self.client.agent.checks().values()]
        return sorted((s for s in states if service_id is None or s.service_id == service_id), key=lambda s: s.check_id)

    def statuses(self, service_id: str) -> dict[str, str]:
        """{check_id: status} for one service instance; {} when it is not registered."""
        return {s.check_id: s.status for s in self.checks(service_id)}

    def status(self, check_id: str) -> str | None:
        """One check's status, or None when the agent has no such check (never registered, or removed)."""
        raw = self.client.agent.checks().get(check_id)
        return raw["Status"] if raw else None

    def service_status(self, service_id: str) -> str | None:
        """The worst status among an instance's checks (None when it has none or is not registered)."""
        found = self.statuses(service_id).values()
        return min(found, key=_SEVERITY.__getitem__) if found else None

    def table(self, service_id: str | None = None) -> Table:
        """The checks as a table: id, kind, status and Consul's last output, for a notebook to show."""
        return Table(
            [
                {"check": s.check_id, "kind": s.kind, "status": s.status, "output": s.output[:90]}
                for s in self.checks(service_id)
            ],
            ["check", "kind", "status", "output"],
        )

    def instances(self, service: str, passing: bool = False) -> list[str]:
        """Ids of the registered instances of `service` (only those with every check passing, if asked)."""
        _, entries = self.client.health.service(service, passing=passing)
        return sorted(e["Service"]["ID"] for e in entries)

    def registered(self, service_id: str) -> bool:
        return self.client.agent.service_definition(service_id) is not None

    def definition(self, check_id: str) -> dict[str, Any] | None:
        """How the agent stored a check: interval, timeout, TTL, DeregisterCriticalServiceAfter as Consul durations.

        Consul 1.8's HTTP API leaves a check's `Definition` empty, so this reads the copy the agent persists
        in its data directory (which `/v1/agent/self` reports). It works when the agent runs on this machine.
        """
        data_dir = self.client.agent.self()["DebugConfig"]["DataDir"]
        for path in sorted(Path(data_dir, "checks").glob("*")):
            try:
                saved = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # the agent is rewriting it; the next call will see it
            if saved.get("Check", {}).get("CheckID") == check_id:
                fields = saved.get("ChkType") or {}
                return {k: (go_duration(v) if k in _DURATION_FIELDS else v) for k, v in fields.items() if v}
        return None

    # -- waiting -------------------------------------------------------------------------------------
    def wait_for(self, check_id: str, status: str, timeout: float = 15.0, since: float | None = None) -> float:
        """Block until the check has `status`; return seconds since `since` (a `time.monotonic()`) or since the call."""
        _known(status)
        return self._wait(
            lambda: self.status(check_id) == status,
            lambda: f"check {check_id} is {self.status(check_id)!r}",
            f"{check_id} to be {status}",
            timeout,
            since,
        )

    def wait_all(self, service_id: str, status: str, timeout: float = 15.0, since: float | None = None) -> float:
        """Block until every check of the instance has `status` (and it has at least one)."""
        _known(status)

        def reached() -> bool:
            found = self.statuses(service_id)
            return bool(found) and all(s == status for s in found.values())

        return self._wait(
            reached,
            lambda: f"its checks are {self.statuses(service_id)}",
            f"every check of {service_id} to be {status}",
            timeout,
            since,
        )

    def wait_listed(
        self,
        service: str,
        service_id: str,
        listed: bool = True,
        passing: bool = True,
        timeout: float = 15.0,
        since: float | None = None,
    ) -> float:
        """Block until the health API lists `service_id` among `service`'s (passing) instances, or no longer does.

        The health API answers from the catalog, which the agent updates a moment after its own view changes,
        so wait here before asking clients' questions such as "which instances pass?".
        """
        state = "listed" if listed else "not listed"
        return self._wait(
            lambda: (service_id in self.instances(service, passing)) == listed,
            lambda: f"{service} has {self.instances(service, passing)}",
            f"{service_id} to be {state} among the {'passing ' if passing else ''}instances of {service}",
            timeout,
            since,
        )

    def wait_gone(self, service_id: str, timeout: float = 15.0, since: float | None = None) -> float:
        """Block until the agent no longer has the instance (deregistered, or reaped after being critical)."""
        return self._wait(
            lambda: not self.registered(service_id),
            lambda: f"{service_id} is still registered",
            f"{service_id} to be deregistered",
            timeout,
            since,
        )

    def _wait(
        self, reached: Callable[[], bool], describe: Callable[[], str], wanted: str, timeout: float, since: float | None
    ) -> float:
        """core.wait_until with Consul's client errors counted as "not yet": a wait must outlast a server restart."""
        return wait_until(reached, timeout, wanted, since=since, not_yet=_UNREACHABLE, seen=describe)

    def close(self) -> None:
        self.client.http.session.close()

    def __enter__(self) -> ConsulHealth:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_DURATION_FIELDS = {"Interval", "Timeout", "TTL", "DeregisterCriticalServiceAfter"}


def _known(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"invalid argument: status: {status!r}; use one of {', '.join(STATUSES)}")
