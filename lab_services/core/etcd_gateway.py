"""etcd's JSON gateway (`/v3/...` over HTTP) on one member: for asking exactly that member, with no client library.

The etcd client (`pyetcd`) fails over between members, which is what a service wants; a drill or a readiness
probe wants the opposite, the answer of one chosen member (a dead one answers nothing). Keys and values are
base64 in the gateway's JSON; this client takes and returns text.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from lab_services.core.addresses import etcd_endpoint
from lab_services.core.http import http_json


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _text(b64: str) -> str:
    return base64.b64decode(b64).decode()


def prefix_end(prefix: str) -> str:
    """The range end that selects every key starting with `prefix` ('/services/user/' -> '/services/user0')."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class EtcdGateway:
    """One etcd member's JSON gateway at `endpoint` ('127.0.0.1:2379'); OSError when the member does not answer."""

    def __init__(self, endpoint: str, timeout: float = 2.0):
        host, port = etcd_endpoint(endpoint, "endpoint")
        self.endpoint = f"{host}:{port}"
        self.timeout = timeout

    def call(self, path: str, body: Mapping[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """POST `body` to /v3/`path` (e.g. 'kv/range') and return the decoded answer."""
        return http_json(f"http://{self.endpoint}/v3/{path}", data=dict(body), timeout=timeout or self.timeout)

    def status(self) -> dict[str, Any]:
        """Member id (`header.member_id`), leader id (`leader`) and raft term of this member."""
        return self.call("maintenance/status", {})

    def count(self, key: str) -> int:
        """How many keys equal `key` (0 or 1)."""
        return int(self.call("kv/range", {"key": _b64(key), "count_only": True}).get("count", 0))

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`, sorted."""
        answer = self.call("kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix)), "keys_only": True})
        return sorted(_text(kv["key"]) for kv in answer.get("kvs", []))

    def put(self, key: str, value: str, lease: int | None = None) -> dict[str, Any]:
        return self.call("kv/put", {"key": _b64(key), "value": _b64(value), **({"lease": lease} if lease else {})})

    def delete(self, key: str, timeout: float | None = None) -> dict[str, Any]:
        return self.call("kv/deleterange", {"key": _b64(key)}, timeout=timeout)
