"""A small client for a user service's side HTTP port, so notebooks turn its knobs in one line.

admin = AdminClient("127.0.0.1:9101")
admin.set_health("NOT_SERVING", service="lab.user.v1.UserService")
admin.set_faults(latency_ms=200, error_rate=0.1)
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from lab_services.core.addresses import host_port
from lab_services.core.network import require_lab_host


class AdminClient:
    """Talks to /admin/*, /health and /metrics with urllib; a rejected request raises ValueError."""

    def __init__(self, address: str, timeout: float = 5.0):
        host, port = host_port(address, "address", "127.0.0.1:9101")
        self.base = f"http://{require_lab_host(host, 'address')}:{port}"
        self.timeout = timeout

    def state(self) -> dict[str, Any]:
        """Identity, health per service, faults, user count and latest sequence of the instance."""
        return self._request("GET", "/admin/state")

    def settings(self) -> dict[str, Any]:
        """The runtime settings this instance applied, their revision, a rejection and its store's state (lesson 10)."""
        return self._request("GET", "/admin/settings")

    def set_health(self, status: str, service: str = "") -> dict[str, str]:
        """Set "SERVING" or "NOT_SERVING" for the server ("") or one service; return all statuses."""
        return self._request("POST", "/admin/health", {"status": status, "service": service})["health"]

    def set_faults(self, latency_ms: float | None = None, error_rate: float | None = None) -> dict[str, float]:
        """Change the given fault settings (None keeps the current one); return the settings now in force."""
        body = {k: v for k, v in {"latency_ms": latency_ms, "error_rate": error_rate}.items() if v is not None}
        return self._request("POST", "/admin/faults", body)["faults"]

    def reset(self) -> dict[str, Any]:
        """Back to a fresh instance: no faults, every service SERVING, no users; returns what was undone."""
        return self._request("POST", "/admin/reset", {})

    def health(self, service: str = "") -> str:
        """The status /health reports, e.g. "SERVING" (what a Consul HTTP check sees)."""
        return self._text(f"/health?service={service}" if service else "/health").strip()

    def metrics(self) -> str:
        """The Prometheus exposition text of /metrics."""
        return self._text("/metrics")

    def _text(self, path: str) -> str:
        try:
            with urllib.request.urlopen(self.base + path, timeout=self.timeout) as response:
                return response.read().decode()
        except urllib.error.HTTPError as exc:  # /health answers 503 with the status in the body
            with exc:
                return exc.read().decode()

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code == 400:
                    raise ValueError(json.loads(exc.read())["error"]) from None
                raise
