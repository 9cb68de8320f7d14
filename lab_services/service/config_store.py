"""The configuration centre: settings kept in Consul KV or etcd, read, written, followed and rolled back.

Both stores hold one key per setting under a prefix (`config/user/latency_ms`, text values) and answer the same
questions, each its own way:

  snapshot()          every key under the prefix and the revision it was read at (Consul: X-Consul-Index;
                      etcd: the store revision)
  wait(after)         block until something under the prefix changed after `after` (Consul: a blocking query
                      `?index=`; etcd: a watch from `after + 1`), or `wait_s` passed; then a fresh snapshot
  put(key, text, cas) write; with `cas`, only if the key is still at that revision (Consul `?cas=`, an etcd
                      transaction comparing the key's mod revision); returns the new revision or raises CasConflict
  history(key)        earlier values: etcd keeps every revision until compaction (read at `revision=`); Consul
                      keeps only the current value and its ModifyIndex, so the lab writes its own history next to it
`SettingsFollower` runs `wait` in a loop on a thread and offers each snapshot to the instance's RuntimeSettings.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from lab_services.core.addresses import consul_http_address, etcd_endpoints
from lab_services.core.backoff import Backoff
from lab_services.core.errors import BadInputError, LabError, UnreachableError
from lab_services.core.etcd_gateway import EtcdGateway, prefix_end
from lab_services.core.network import require_lab_host
from lab_services.service.settings import RuntimeSettings

log = logging.getLogger(__name__)

STORES = ("consul", "etcd")
HISTORY_ROOT = "config-history"  # Consul only: {HISTORY_ROOT}/{service}/{key}/{index:012d} = value


class StoreUnavailable(UnreachableError):
    """The configuration store did not answer (down, or no leader / no quorum)."""


class StoreRefused(BadInputError):
    """The store answered, and refused the request (e.g. etcd: a revision compacted away or not yet written)."""


class CasConflict(LabError, RuntimeError):
    """A check-and-set write lost: the key changed since the revision the writer read."""


@dataclass(frozen=True)
class Snapshot:
    values: dict[str, str]  # key relative to the prefix -> text
    revision: int
    modified: dict[str, int]  # key -> the revision it was last written at


@dataclass(frozen=True)
class Version:
    revision: int
    value: str | None  # None: deleted at that revision


def default_prefix(service: str) -> str:
    return f"config/{service}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _text(b64: str | None) -> str:
    return base64.b64decode(b64 or "").decode()


def _loopback(host: str, port: int, field: str) -> str:
    """'host:port' for a parsed address, which must be on loopback like every server of the lab."""
    return f"{require_lab_host(host, field)}:{port}"


class ConsulConfigStore:
    """Settings under `prefix` in Consul KV, through one agent's HTTP API at `address`."""

    kind = "consul"

    def __init__(self, address: str, prefix: str, timeout: float = 3.0):
        self.address = _loopback(*consul_http_address(address, "address"), "address")
        self.prefix = prefix.strip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"consul KV at {self.address} under {self.prefix}/"

    def _request(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> tuple[Any, int]:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(f"http://{self.address}{path}", data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as resp:
                return json.loads(resp.read() or b"null"), int(resp.headers.get("X-Consul-Index") or 0)
        except urllib.error.HTTPError as err:
            with err:
                text = err.read().decode(errors="replace").strip()
                if err.code == 404:
                    return None, int(err.headers.get("X-Consul-Index") or 0)
                if err.code == 409 and path.startswith("/v1/txn"):
                    raise CasConflict(text) from None
                raise StoreUnavailable(f"consul {self.address}: HTTP {err.code}: {text}") from None
        except (OSError, urllib.error.URLError) as err:
            raise StoreUnavailable(f"consul {self.address}: {getattr(err, 'reason', err)}") from None

    def _read(self, query: str, timeout: float | None = None) -> Snapshot:
        entries, index = self._request("GET", f"/v1/kv/{self.prefix}/?recurse{query}", timeout=timeout)
        start = len(self.prefix) + 1
        entries = [e for e in entries or [] if len(e["Key"]) > start]
        return Snapshot(
            {e["Key"][start:]: _text(e["Value"]) for e in entries},
            index,
            {e["Key"][start:]: e["ModifyIndex"] for e in entries},
        )

    def snapshot(self) -> Snapshot:
        return self._read("")

    def wait(self, after: int, wait_s: float = 5.0) -> Snapshot:
        """A blocking query: returns as soon as the prefix's index moves past `after`, or after `wait_s`.

        Consul adds up to wait/16 of jitter, hence the 10 % margin before the client gives up on the agent.
        """
        return self._read(f"&index={after}&wait={int(wait_s * 1000)}ms", timeout=wait_s * 1.1 + self.timeout)

    def put(self, key: str, text: str, cas: int | None = None) -> int:
        """Write key (relative to the prefix); with `cas`, only if its ModifyIndex is still `cas` (0: must not exist).

        One transaction sets the key and reads it back, so the ModifyIndex recorded in the history is this write's.
        """
        full = f"{self.prefix}/{key}"
        op = (
            {"Verb": "set", "Key": full, "Value": _b64(text)}
            if cas is None
            else {"Verb": "cas", "Key": full, "Value": _b64(text), "Index": cas}
        )
        try:
            answer, _ = self._request("PUT", "/v1/txn", [{"KV": op}, {"KV": {"Verb": "get", "Key": full}}])
        except CasConflict:
            now = self.snapshot().modified.get(key, 0)
            raise CasConflict(f"{key}: changed since revision {cas} (now at {now})") from None
        index = answer["Results"][1]["KV"]["ModifyIndex"]
        self._request("PUT", f"/v1/kv/{self._history_key(key)}/{index:012d}", text.encode())
        return index

    def delete(self, key: str) -> None:
        self._request("DELETE", f"/v1/kv/{self.prefix}/{key}")

    def entry(self, key: str) -> dict[str, Any] | None:
        """Consul's own record of a key: its one current value, CreateIndex and ModifyIndex (no earlier values)."""
        entries, _ = self._request("GET", f"/v1/kv/{self.prefix}/{key}")
        return entries[0] if entries else None

    def _history_key(self, key: str) -> str:
        return f"{HISTORY_ROOT}/{self.prefix}/{key}"

    def history(self, key: str) -> list[Version]:
        """The values the lab's own writers recorded, oldest first (Consul keeps no earlier values of a key)."""
        entries, _ = self._request("GET", f"/v1/kv/{self._history_key(key)}/?recurse")
        return [Version(int(e["Key"].rsplit("/", 1)[1]), _text(e["Value"])) for e in entries or []]

    def value_at(self, key: str, revision: int) -> str | None:
        found = {v.revision: v.value for v in self.history(key)}
        if revision not in found:
            raise KeyError(
                f"{key}: no recorded value at revision {revision}; recorded: {', '.join(map(str, found)) or 'none'}"
            )
        return found[revision]

    def delete_all(self) -> None:
        """Remove every setting and its history (a fresh start for a lesson or a test)."""
        self._request("DELETE", f"/v1/kv/{self.prefix}/?recurse")
        self._request("DELETE", f"/v1/kv/{HISTORY_ROOT}/{self.prefix}/?recurse")


class EtcdConfigStore:
    """Settings under `prefix` in etcd, through the JSON gateway of the first member of `endpoints` that answers."""

    kind = "etcd"

    def __init__(self, endpoints: list[str] | str, prefix: str, timeout: float = 3.0):
        self.endpoints = [_loopback(host, port, "endpoints") for host, port in etcd_endpoints(endpoints)]
        self.prefix = prefix.strip("/")
        self.timeout = timeout
        self._current = 0

    def __repr__(self) -> str:
        return f"etcd at {self.endpoints[self._current]} under {self.prefix}/"

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One gateway call; on failure the next member is tried, and StoreUnavailable when none answers."""
        errors = []
        for _ in self.endpoints:
            endpoint = self.endpoints[self._current]
            try:
                return EtcdGateway(endpoint, self.timeout).call(path, body)
            except urllib.error.HTTPError as err:
                with err:
                    text = err.read().decode(errors="replace").strip()
                if err.code == 400:
                    raise StoreRefused(f"etcd {endpoint}: {json.loads(text).get('message', text)}") from None
                errors.append(f"{endpoint}: HTTP {err.code}: {text}")
            except OSError as err:
                errors.append(f"{endpoint}: {getattr(err, 'reason', err)}")
            self._current = (self._current + 1) % len(self.endpoints)
        raise StoreUnavailable("etcd: " + "; ".join(errors))

    def _range_body(self, revision: int | None = None) -> dict[str, Any]:
        begin = f"{self.prefix}/"
        return {
            "key": _b64(begin),
            "range_end": _b64(prefix_end(begin)),
            **({"revision": revision} if revision else {}),
        }

    def snapshot(self) -> Snapshot:
        """A linearizable read: without quorum it fails, which is how an instance learns the store is gone."""
        answer = self._call("kv/range", self._range_body())
        start = len(self.prefix) + 1
        kvs = [(_text(kv["key"])[start:], kv) for kv in answer.get("kvs", [])]
        return Snapshot(
            {k: _text(kv.get("value")) for k, kv in kvs},
            int(answer["header"]["revision"]),
            {k: int(kv["mod_revision"]) for k, kv in kvs},
        )

    def wait(self, after: int, wait_s: float = 5.0) -> Snapshot:
        """Watch the prefix from `after + 1`; at the first event (or after `wait_s` of silence) read a new snapshot."""
        endpoint = self.endpoints[self._current]
        body = {"create_request": {**self._range_body(), "start_revision": after + 1}}
        request = urllib.request.Request(f"http://{endpoint}/v3/watch", data=json.dumps(body).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=wait_s) as stream:
                for line in stream:
                    result = json.loads(line).get("result", {})
                    if result.get("events") or result.get("compact_revision"):
                        break
        except TimeoutError:
            pass  # nothing changed for wait_s: the fresh read below also proves the store still has quorum
        except (OSError, ValueError) as err:
            self._current = (self._current + 1) % len(self.endpoints)
            raise StoreUnavailable(f"etcd watch on {endpoint}: {getattr(err, 'reason', err)}") from None
        return self.snapshot()

    def put(self, key: str, text: str, cas: int | None = None) -> int:
        """Write key; with `cas`, a transaction that writes only if the key's mod revision is still `cas` (0: none)."""
        full = _b64(f"{self.prefix}/{key}")
        if cas is None:
            return int(self._call("kv/put", {"key": full, "value": _b64(text)})["header"]["revision"])
        answer = self._call(
            "kv/txn",
            {
                "compare": [{"key": full, "target": "MOD", "result": "EQUAL", "mod_revision": str(cas)}],
                "success": [{"request_put": {"key": full, "value": _b64(text)}}],
                "failure": [{"request_range": {"key": full}}],
            },
        )
        if not answer.get("succeeded"):
            kvs = answer["responses"][0]["response_range"].get("kvs", [])
            now = kvs[0]["mod_revision"] if kvs else 0
            raise CasConflict(f"{key}: changed since revision {cas} (now at {now})")
        return int(answer["header"]["revision"])

    def delete(self, key: str) -> None:
        self._call("kv/deleterange", {"key": _b64(f"{self.prefix}/{key}")})

    def _at(self, key: str, revision: int | None = None) -> dict[str, Any] | None:
        answer = self._call(
            "kv/range", {"key": _b64(f"{self.prefix}/{key}"), **({"revision": revision} if revision else {})}
        )
        kvs = answer.get("kvs", [])
        return kvs[0] if kvs else None

    def history(self, key: str, limit: int = 20) -> list[Version]:
        """Earlier values from etcd's own revisions (MVCC), oldest first: read at mod_revision - 1, back to creation."""
        versions: list[Version] = []
        kv = self._at(key)
        while kv is not None and len(versions) < limit:
            versions.append(Version(int(kv["mod_revision"]), _text(kv.get("value"))))
            try:
                kv = self._at(key, int(kv["mod_revision"]) - 1)
            except StoreRefused as err:  # compacted: older revisions are gone
                if "compacted" not in str(err):
                    raise
                break
        return versions[::-1]

    def value_at(self, key: str, revision: int) -> str | None:
        try:
            kv = self._at(key, revision)
        except StoreRefused as err:
            raise KeyError(f"{key}: cannot read revision {revision}: {err}") from None
        if kv is None:
            raise KeyError(f"{key}: not set at revision {revision}")
        return _text(kv.get("value"))

    def delete_all(self) -> None:
        self._call("kv/deleterange", self._range_body())


ConfigStore = ConsulConfigStore | EtcdConfigStore


def open_store(kind: str, address: str, prefix: str) -> ConfigStore:
    """The store `kind` ("consul" or "etcd") at `address` (etcd: comma-separated endpoints)."""
    if kind == "consul":
        return ConsulConfigStore(address, prefix)
    if kind == "etcd":
        return EtcdConfigStore(address, prefix)
    raise ValueError(f"invalid argument: store: {kind!r}; use one of {', '.join(STORES)}")


class SettingsFollower:
    """Follows the store on a daemon thread, offering each snapshot to `settings`; keeps them when the store is lost."""

    def __init__(
        self, store: ConfigStore, settings: RuntimeSettings, wait_s: float = 5.0, backoff: Backoff | None = None
    ):
        self.store = store
        self.settings = settings
        self.wait_s = wait_s
        self.backoff = backoff or Backoff(base=0.2, cap=2.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, first_timeout: float = 5.0) -> SettingsFollower:
        """Read once (so the first call already sees stored settings when the store answers), then follow."""
        self._thread = threading.Thread(target=self._run, name="settings-follower", daemon=True)
        self._first = threading.Event()
        self._thread.start()
        self._first.wait(first_timeout)
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        revision = 0
        while not self._stop.is_set():
            try:
                snap = self.store.snapshot() if revision == 0 else self.store.wait(revision, self.wait_s)
            except StoreUnavailable as err:
                if self.settings.store_error is None:  # say it once per outage, not at every retry
                    log.warning("settings store unavailable, keeping revision %s: %s", self.settings.revision, err)
                self.settings.store_lost(str(err))
                self._first.set()
                revision = 0  # read afresh when it answers again: what was missed arrives in that snapshot
                self._stop.wait(next(self.backoff))
                continue
            self.backoff.reset()
            changed = snap.revision != revision or self.settings.store_error is not None
            if changed and not self.settings.offer(snap.values, snap.revision, self.store.kind):
                log.warning("settings of revision %s rejected: %s", snap.revision, self.settings.rejected)
            revision = max(snap.revision, 1)
            self._first.set()
