"""Lesson 03's DNS question, which ports SRV lists for a service, asked again while a server is a moment behind."""

from __future__ import annotations

import contextlib

from lab_services.core.wait import WaitTimeout, wait_until
from lab_services.discovery import srv_records


def srv_ports(service: str, dns: str, expect: list[int] | None = None, timeout: float = 5.0) -> list[int]:
    """The sorted ports of the SRV records Consul's DNS at `dns` answers for `service`.

    Consul's DNS answers from any server (stale reads are allowed), which may be a few milliseconds behind a
    registration. With `expect`, ask again for up to `timeout` seconds until the answer is those ports; if it never
    is, return what DNS answers then, so the lesson's checkpoint can say what DNS really left out.
    """
    if expect is not None:
        wanted = sorted(expect)
        with contextlib.suppress(WaitTimeout):
            wait_until(
                lambda: _ports(service, dns) == wanted, timeout, f"Consul DNS at {dns} to list {service} on {wanted}"
            )
    return _ports(service, dns)


def _ports(service: str, dns: str) -> list[int]:
    return sorted(r.port for r in srv_records(service, dns))
