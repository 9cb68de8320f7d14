"""What a service instance registers, its health checks, and the validation that refuses bad input before sending.

Both registrars (Consul and etcd) take the same `ServiceRegistration`, so a lesson can register one instance with
either backend and compare. Validation happens up front, in the registrar's constructor, so a typo such as
`ttl="3x"` fails immediately with the field's name instead of as a retry loop against a server that keeps saying no.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass

from lab_services.core.durations import DURATION_HINT, parse_duration
from lab_services.core.errors import BadInputError
from lab_services.core.instance import ServiceInstance
from lab_services.core.network import require_lab_host

CHECK_KINDS = ("http", "tcp", "grpc", "ttl")
CHECK_STATUSES = ("passing", "warning", "critical")

# Consul 1.8 accepts a check interval below one second but raises it to one second and logs
# `check has interval below minimum ... minimum_interval=1s` (lesson 09 shows it): the lab warns, it does not refuse.
# A DeregisterCriticalServiceAfter below one minute is accepted too: Consul raises it to 1m and logs a warning
# (lesson 02 shows it). A TTL below one second leaves no room for heartbeats sent every ttl/3 over HTTP.
MIN_INTERVAL_S = 1.0
MIN_TTL_S = 1.0

_SERVICE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_SERVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_GRPC_SERVICE = re.compile(r"^[A-Za-z0-9._-]*$")
# Consul's own rules for service meta: at most 64 pairs, keys of ASCII letters, digits, '-' and '_' up to
# 128 characters, values up to 512 characters, and the 'consul-' key prefix reserved for Consul itself.
_META_KEY = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
MAX_META_PAIRS = 64
MAX_META_VALUE = 512
_INSTANCE_FIELDS = {f.name for f in dataclasses.fields(ServiceInstance)}


class ConsulRaises(UserWarning):
    """A setting Consul accepts but changes: an interval below 1 s runs every second (the agent logs a warning)."""


class RegistrationError(BadInputError):
    """A registration Consul or etcd would refuse (or the lab forbids); `.field` names it and `.reason` says why."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"invalid argument: {field}: {reason}")
        self.field = field
        self.reason = reason


def _duration(value: object, field: str, minimum: float = 0.0, why: str = "") -> float:
    try:
        seconds = parse_duration(value)  # type: ignore[arg-type]
    except ValueError as err:
        raise RegistrationError(field, str(err)) from None
    if seconds <= 0:
        raise RegistrationError(field, f"{value!r} must be longer than zero {DURATION_HINT}")
    if seconds < minimum:
        raise RegistrationError(field, f"{value!r} is below {why}")
    return seconds


def _port(value: object, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise RegistrationError(field, f"{value!r} is not a port number (1..65535)")


@dataclass(frozen=True)
class CheckSpec:
    """One health check: how Consul decides whether the instance is healthy.

    `kind` is 'http' (GET `http_path` on the service's side HTTP port), 'tcp' (connect to the gRPC port),
    'grpc' (the standard gRPC health service, `grpc_service` naming which service to ask about) or 'ttl' (the
    registrar must report in within `ttl`, which it does every ttl/3). `status` is the status the check starts
    with; TTL checks start 'passing' unless told otherwise, because Consul would start them critical.
    """

    kind: str
    interval: str = "1s"
    timeout: str = "1s"
    ttl: str | None = None
    deregister_critical_after: str | None = None
    http_path: str = "/health"
    grpc_service: str = ""
    grpc_use_tls: bool = False
    tls_skip_verify: bool = False
    status: str | None = None

    @property
    def initial_status(self) -> str | None:
        """The status sent at registration: the one asked for, else 'passing' for TTL checks, else Consul's default."""
        if self.status is not None:
            return self.status
        return "passing" if self.kind == "ttl" else None

    @property
    def effective_interval(self) -> float:
        """Seconds between runs as Consul schedules them: the interval asked for, raised to Consul's 1 s floor."""
        return max(parse_duration(self.interval), MIN_INTERVAL_S)

    @property
    def ttl_seconds(self) -> float | None:
        return parse_duration(self.ttl) if self.ttl is not None else None

    def validate(self, where: str = "check", http_port: int | None = None) -> None:
        """Raise RegistrationError naming `where.<field>` if Consul would refuse this check or the lab forbids it;
        warn (ConsulRaises) when Consul would accept it but change it, so the learner is not surprised later."""
        if self.kind not in CHECK_KINDS:
            raise RegistrationError(
                f"{where}.kind", f"{self.kind!r} is not a check kind; use one of {', '.join(map(repr, CHECK_KINDS))}"
            )
        if self.kind == "ttl":
            if self.ttl is None:
                raise RegistrationError(f"{where}.ttl", "a ttl check needs ttl, e.g. ttl='3s'")
            _duration(self.ttl, f"{where}.ttl", MIN_TTL_S, "the 1s minimum (heartbeats go out every ttl/3)")
        else:
            if self.ttl is not None:
                raise RegistrationError(f"{where}.ttl", f"ttl only applies to kind='ttl', not {self.kind!r}")
            if _duration(self.interval, f"{where}.interval") < MIN_INTERVAL_S:
                warnings.warn(
                    ConsulRaises(
                        f"{where}.interval: {self.interval!r} is below Consul's minimum of 1s: Consul accepts it, "
                        "runs the check every 1s and logs 'check has interval below minimum'"
                    ),
                    stacklevel=2,
                )
            _duration(self.timeout, f"{where}.timeout")
        if self.deregister_critical_after is not None:
            _duration(self.deregister_critical_after, f"{where}.deregister_critical_after")
        if self.kind == "http":
            if http_port is None:
                raise RegistrationError(
                    f"{where}.kind", "an http check needs the registration's http_port (the service's side HTTP port)"
                )
            if not isinstance(self.http_path, str) or not self.http_path.startswith("/"):
                raise RegistrationError(f"{where}.http_path", f"{self.http_path!r} must start with '/', e.g. '/health'")
        if not isinstance(self.grpc_service, str) or not _GRPC_SERVICE.match(self.grpc_service):
            raise RegistrationError(
                f"{where}.grpc_service",
                f"{self.grpc_service!r} is not a gRPC service name "
                "(letters, digits, '.', '_', '-'; '' asks about the whole server)",
            )
        if self.status is not None and self.status not in CHECK_STATUSES:
            raise RegistrationError(
                f"{where}.status", f"{self.status!r} is not a status; use one of {', '.join(map(repr, CHECK_STATUSES))}"
            )


@dataclass(frozen=True)
class ServiceRegistration:
    """A registration: one service instance and how the registry checks it.

    `instance.port` is the gRPC port; `http_port` is the service's side HTTP port (GET /health answers 200 while
    serving), the target of 'http' checks. Checks are copied, so changing the caller's list later changes nothing.
    """

    instance: ServiceInstance
    http_port: int | None = None
    checks: tuple[CheckSpec, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "checks", tuple(self.checks))

    def replace(self, **changes: object) -> ServiceRegistration:
        """A copy with `changes`; the instance's own fields (id, name, host, port, tags, meta) change the instance.

        `registration.replace(id="user-2", checks=[CheckSpec("ttl", ttl="5s")])`, as a lesson tries a variant.
        """
        own = {k: v for k, v in changes.items() if k not in _INSTANCE_FIELDS}
        instance = {k: v for k, v in changes.items() if k in _INSTANCE_FIELDS}
        return dataclasses.replace(self, instance=dataclasses.replace(self.instance, **instance), **own)

    def check_ids(self) -> list[str]:
        """Stable, readable check ids, `service:<id>:<kind>`, with '-2', '-3'... when a kind repeats.

        Consul's own default would be `service:<id>:1`, `service:<id>:2`, which says nothing about the check.
        """
        seen: dict[str, int] = {}
        ids = []
        for check in self.checks:
            seen[check.kind] = seen.get(check.kind, 0) + 1
            suffix = "" if seen[check.kind] == 1 else f"-{seen[check.kind]}"
            ids.append(f"service:{self.instance.id}:{check.kind}{suffix}")
        return ids

    def validate(self) -> None:
        """Raise RegistrationError naming the first bad field; return None when Consul and etcd would accept it."""
        instance = self.instance
        if not isinstance(instance, ServiceInstance):
            raise RegistrationError(
                "instance",
                f"{instance!r} is not a ServiceInstance, e.g. ServiceInstance('user-1', 'user', '127.0.0.1', 5001)",
            )
        if not isinstance(instance.name, str) or not _SERVICE_NAME.match(instance.name):
            raise RegistrationError(
                "name",
                f"{instance.name!r} is not a service name: use letters, digits and dashes (a DNS label, at most 63, "
                "no leading or trailing dash), e.g. 'user'",
            )
        if not isinstance(instance.id, str) or not instance.id:
            raise RegistrationError("id", "must not be empty; e.g. 'user-5001' (name and port)")
        if not _SERVICE_ID.match(instance.id):
            raise RegistrationError(
                "id",
                f"{instance.id!r} may use only letters, digits, '.', '_', ':' and '-' (it becomes part of "
                "URLs and etcd keys)",
            )
        self._validate_host()
        _port(instance.port, "port")
        if self.http_port is not None:
            _port(self.http_port, "http_port")
        for i, tag in enumerate(instance.tags):
            if not isinstance(tag, str) or not tag:
                raise RegistrationError(f"tags[{i}]", f"{tag!r} is not a tag; tags are non-empty strings, e.g. 'v1'")
        self._validate_meta()
        for i, check in enumerate(self.checks):
            if not isinstance(check, CheckSpec):
                raise RegistrationError(f"checks[{i}]", f"{check!r} is not a CheckSpec")
            check.validate(f"checks[{i}]", self.http_port)

    def _validate_host(self) -> None:
        try:
            require_lab_host(self.instance.host, "host")
        except ValueError:
            raise RegistrationError(
                "host",
                f"{self.instance.host!r} is not an IP in 127.0.0.0/8; "
                "the lab only uses loopback addresses (e.g. '127.0.0.1')",
            ) from None

    def _validate_meta(self) -> None:
        meta = self.instance.meta
        if len(meta) > MAX_META_PAIRS:
            raise RegistrationError("meta", f"{len(meta)} pairs is more than Consul's limit of {MAX_META_PAIRS}")
        for key, value in meta.items():
            if not isinstance(key, str) or not _META_KEY.match(key):
                raise RegistrationError(
                    f"meta[{key!r}]",
                    "keys are 1-128 ASCII letters, digits, '-' or '_' (Consul's rule), e.g. 'metrics_port'",
                )
            if key.lower().startswith("consul-"):
                raise RegistrationError(f"meta[{key!r}]", "the 'consul-' prefix is reserved for Consul itself")
            if not isinstance(value, str):
                raise RegistrationError(f"meta[{key!r}]", f"{value!r} must be a string, e.g. '9101'")
            if len(value) > MAX_META_VALUE:
                raise RegistrationError(f"meta[{key!r}]", f"value is longer than Consul's limit of {MAX_META_VALUE}")
