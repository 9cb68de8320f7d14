"""Ask a server over HTTP whether it is ready, and wait for an answer, instead of sleeping and hoping."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Callable


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


class NotReadyError(RuntimeError):
    """A server did not become ready in time; the message carries the tail of its log."""


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> float:
    """Poll `check` until it is true; return the seconds it took, or raise NotReadyError naming `what`."""
    start = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - start
        except (OSError, ValueError):
            pass
        if time.monotonic() - start > timeout:
            raise NotReadyError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(interval)
