"""Register a service instance in etcd under a lease, keep the lease alive, and read instances back.

Key layout (one key per instance, attached to the instance's lease)::

    {prefix}/{name}/{service_id}  ->  {"id": "user-5001", "name": "user", "address": "127.0.0.1:5001",
                                       "host": "127.0.0.1", "port": 5001, "tags": ["v1"],
                                       "meta": {"version": "v1", "metrics_port": "9101"}}

e.g. `/services/user/user-5001`. Discovery lists or watches the prefix `{prefix}/{name}/` (see
`service_prefix`) and decodes each key and value with `parse_instance`, which also reads the two other layouts a
learner meets in the same cluster: the Go articles' (`/services/user/127.0.0.1:8080`, the value empty or the address
as plain text) and etcd's own naming format (`{"Op": 0, "Addr": "127.0.0.1:8080"}`, written by etcd's endpoints
manager for gRPC's etcd resolver).

etcd has no health checks: the lease is the health signal. The registrar refreshes it every lease_ttl/3;
if the process dies, refreshes stop and etcd deletes the key when the lease expires. If the lease is lost
anyway (it expired while etcd was unreachable, or etcd lost its data) the registrar grants a new one and
puts the key again. With several endpoints, a failed one is skipped and the next one used.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import pyetcd
from pyetcd.exceptions import ConnectionFailedError, ConnectionTimeoutError, NoServerAvailableError

from lab_services.core.addresses import etcd_endpoints
from lab_services.core.backoff import Backoff
from lab_services.core.wire import ETCD_SERVICES_PREFIX
from lab_services.registry.base import Registrar
from lab_services.registry.spec import RegistrationError, ServiceRegistration

DEFAULT_PREFIX = ETCD_SERVICES_PREFIX
# etcd raises shorter TTLs to its minimum (about 2 s with default election timings, docs/architecture.md).
MIN_LEASE_TTL = 2
# gRPC backs off reconnecting to a dead server for up to two minutes by default; a lab member restarted
# on stage must be used again within a second.
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
# After a failure, pyetcd skips an endpoint for this many seconds (its default is 300).
_ENDPOINT_RETRY_S = 1.0


def etcd_client(endpoints: list[tuple[str, int]], timeout: float) -> pyetcd.MultiEndpointEtcd3Client:
    """A failover client over `endpoints` that goes back to a restarted member within a second."""
    return pyetcd.MultiEndpointEtcd3Client(
        endpoints=[
            pyetcd.Endpoint(h, p, secure=False, time_retry=_ENDPOINT_RETRY_S, opts=_CHANNEL_OPTIONS)
            for h, p in endpoints
        ],
        timeout=timeout,
        failover=True,
    )


def instance_key(prefix: str, name: str, service_id: str) -> str:
    return f"{prefix.rstrip('/')}/{name}/{service_id}"


def service_prefix(prefix: str, name: str) -> str:
    """The prefix holding every instance of `name`, with its trailing slash so 'user' does not match 'users'."""
    return f"{prefix.rstrip('/')}/{name}/"


def instance_value(registration: ServiceRegistration) -> dict[str, Any]:
    instance = registration.instance
    return {
        "id": instance.id,
        "name": instance.name,
        "address": instance.address,
        "host": instance.host,
        "port": instance.port,
        "tags": list(instance.tags),
        "meta": dict(instance.meta),
    }


# The layouts `parse_instance` reads, as its result's "dialect" names them.
DIALECTS = ("lab", "articles", "etcd-naming")


def parse_instance(key: str | bytes, value: bytes | str) -> dict[str, Any]:
    """Decode one instance key and value in any dialect of `DIALECTS`; ValueError naming the key and why if it is none.

    The lab's JSON carries its own id; for the other two the key's last segment is the id (every key is one instance)
    and the segment before it the service name. `"dialect"` in the result says which layout the value was in.
    """
    key = key.decode(errors="replace") if isinstance(key, bytes) else key
    try:
        text = value.decode() if isinstance(value, bytes) else value
        instance = _decode_value(key, text.strip())
    except KeyError as err:
        raise ValueError(f"{key}: not a service instance: the lab's JSON has no field {err}") from None
    except (ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{key}: not a service instance: {err}") from None
    instance["key"] = key
    return instance


def _decode_value(key: str, text: str) -> dict[str, Any]:
    if not text.startswith("{"):
        # The articles' layout: the address is the value, or the key's last segment when the value is empty.
        address = text or key.rstrip("/").rsplit("/", 1)[-1]
        return _foreign_instance(key, address, "articles", {})
    data = json.loads(text)
    if "Addr" in data:
        # etcd's naming format; Op 0 is an Add (a Delete is written by deleting the key, never as a value).
        if data.get("Op", 0) != 0:
            raise ValueError(f"etcd naming update with Op {data['Op']!r}, not 0 (Add)")
        metadata = data.get("Metadata")
        meta = {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}
        return _foreign_instance(key, str(data["Addr"]), "etcd-naming", meta)
    if "id" not in data:
        raise ValueError("JSON with neither the lab's 'id' nor etcd naming's 'Addr'")
    return {
        "id": str(data["id"]),
        "name": str(data["name"]),
        "address": str(data["address"]),
        "host": str(data["host"]),
        "port": int(data["port"]),
        "tags": [str(t) for t in data.get("tags", [])],
        "meta": {str(k): str(v) for k, v in data.get("meta", {}).items()},
        "dialect": "lab",
    }


def _foreign_instance(key: str, address: str, dialect: str, meta: dict[str, str]) -> dict[str, Any]:
    """An instance written without the lab's JSON: identity from the key, the rest from `address` ('host:port')."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port with a port from 1 to 65535")
    segments = key.rstrip("/").split("/")
    if len(segments) < 3 or not segments[-2]:
        raise ValueError("the key has no service segment before the instance, as in /services/user/127.0.0.1:8080")
    return {
        "id": segments[-1],
        "name": segments[-2],
        "address": address,
        "host": host.strip("[]"),
        "port": int(port),
        "tags": [],
        "meta": meta,
        "dialect": dialect,
    }


class EtcdRegistrar(Registrar):
    """Registers one instance in etcd under a lease in a background thread; see `Registrar` for the lifecycle.

    >>> e = EtcdRegistrar(reg, endpoints=["127.0.0.1:2379"], lease_ttl=5).start()
    >>> e.wait_registered(5)
    True
    >>> e.stop()          # deletes the key and revokes the lease
    """

    backend = "etcd"
    unreachable_errors = (ConnectionFailedError, ConnectionTimeoutError, NoServerAvailableError)

    def __init__(
        self,
        registration: ServiceRegistration,
        endpoints: str | list[str] | tuple[str, ...] = ("127.0.0.1:2379",),
        lease_ttl: int = 5,
        prefix: str = DEFAULT_PREFIX,
        *,
        backoff: Backoff | None = None,
        request_timeout: float = 2.0,
    ):
        super().__init__(registration, backoff)
        self.endpoints = etcd_endpoints(endpoints)
        if isinstance(lease_ttl, bool) or not isinstance(lease_ttl, int) or lease_ttl < MIN_LEASE_TTL:
            raise RegistrationError(
                "lease_ttl", f"{lease_ttl!r} is not a whole number of seconds >= {MIN_LEASE_TTL} (etcd's minimum)"
            )
        if not isinstance(prefix, str) or not prefix.startswith("/") or prefix.rstrip("/") == "":
            raise RegistrationError("prefix", f"{prefix!r} must start with '/' and name a directory, e.g. '/services'")
        self.lease_ttl = lease_ttl
        self.prefix = prefix.rstrip("/")
        self.key = instance_key(self.prefix, registration.instance.name, registration.instance.id)
        self.value = json.dumps(instance_value(registration), sort_keys=True)
        self.lease_id: int | None = None
        self._client = etcd_client(self.endpoints, request_timeout)

    @property
    def where(self) -> str:
        return ",".join(f"{h}:{p}" for h, p in self.endpoints)

    @property
    def endpoint_in_use(self) -> str:
        """The endpoint the client talks to now, e.g. '127.0.0.1:2379'; it changes when one fails."""
        return self._client.endpoint_in_use.netloc

    @property
    def tick(self) -> float:
        # Refresh three times per TTL, so one lost refresh does not let the lease expire.
        return self.lease_ttl / 3

    def _call(self, method, *args, **kwargs):
        """Call the client, trying each other endpoint once when one is unreachable (pyetcd does not retry)."""
        for _ in range(len(self.endpoints) - 1):
            try:
                return method(*args, **kwargs)
            except self.unreachable_errors:
                continue
        return method(*args, **kwargs)

    def _refresh(self) -> int:
        """Refresh the lease; its new TTL in seconds, or 0 if etcd no longer knows it."""
        responses = self._call(lambda: list(self._client.refresh_lease(self.lease_id)))
        return responses[0].TTL if responses else 0

    def _register(self) -> None:
        if self.lease_id is not None and self._refresh() <= 0:
            self._log.warning("etcd at %s lost lease %x of %s; granting a new one", self.where, self.lease_id, self.key)
            self.lease_id = None
        if self.lease_id is None:
            self.lease_id = self._call(self._client.lease, self.lease_ttl).id
        try:
            self._call(self._client.put, self.key, self.value, lease=self.lease_id)
        except grpc.RpcError as err:
            # NOT_FOUND: the lease expired between grant (or refresh) and put; grant a new one next time.
            if err.code() == grpc.StatusCode.NOT_FOUND:
                self.lease_id = None
            raise

    def _keep_alive(self) -> bool:
        if self._refresh() <= 0:
            return False
        value, meta = self._call(self._client.get, self.key)
        # Someone deleted or overwrote the key while the lease lived on: put it back.
        return value is not None and meta.lease_id == self.lease_id

    def _deregister(self) -> None:
        if self.lease_id is None:
            return
        self._call(self._client.delete, self.key)
        try:
            self._call(self._client.revoke_lease, self.lease_id)
        except grpc.RpcError as err:
            # A lease that already expired (the crash drill stopped its keepalive) is as gone as a revoked one.
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
        self.lease_id = None

    def _close(self) -> None:
        self._client.close()
