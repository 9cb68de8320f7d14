"""Plain HTTP with the standard library: a status and body, or a JSON answer (servers' readiness and admin APIs)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """Status and body; HTTP errors come back as their status, connection failures as status 0."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


def http_json(url: str, data: Any = None, timeout: float = 2.0) -> Any:
    """GET (or POST `data` as JSON) and decode the JSON answer; raises OSError when the server is not there."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")
