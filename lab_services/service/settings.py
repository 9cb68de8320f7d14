"""Runtime settings read from a configuration centre (配置中心) and applied without a restart (热更新).

The schema says which settings exist and how each stored text is parsed; `RuntimeSettings` holds what an
instance applied: the values, the store revision they came from, the last rejected snapshot and whether the
store answers. A snapshot is applied whole or not at all: one bad value keeps every last good value, so an
instance never runs a half-applied configuration.

    settings = RuntimeSettings(SCHEMA, tags=("v1",))
    settings.offer({"greeting": "hi", "latency_ms": "50"}, revision=42, source="consul")   # True: applied
    settings.values["latency_ms"]                                                           # 50
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc import aio

from lab_services._proto.lab.user.v1 import user_service_pb2 as pb
from lab_services.core.errors import BadInputError
from lab_services.service.aio_interceptors import responses
from lab_services.service.interceptors import Behavior, split_method, wrap_handler

OVERRIDES = "overrides"  # {prefix}/overrides/{tag}/{key}: what instances with that tag read first (a canary)


class InvalidSetting(BadInputError):
    """A stored value (or a key) the schema does not accept; the message starts with the key."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key = key


@dataclass(frozen=True)
class Setting:
    """One setting: its default, and `parse` turning the stored text into a value (raising ValueError why not)."""

    name: str
    default: Any
    parse: Callable[[str], Any]
    help: str = ""


def parse_greeting(text: str) -> str:
    text = text.strip()
    if not 1 <= len(text) <= 200:
        raise ValueError(f"must be 1 to 200 characters, got {len(text)}")
    return text


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"must be true or false, got {text!r}")
    return lowered == "true"


def int_between(low: int, high: int) -> Callable[[str], int]:
    """A parser for an integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"must be an integer from {low} to {high}, got {text!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}, got {value}")
        return value

    return parse


SCHEMA: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("greeting", "hello", parse_greeting, "prefixed to every Chat reply"),
        Setting("signups_enabled", True, parse_bool, "false: CreateUser and ImportUsers fail with FAILED_PRECONDITION"),
        Setting("latency_ms", 0, int_between(0, 5000), "added before every user-service call"),
    )
}


def validate(key: str, text: str, schema: Mapping[str, Setting] = SCHEMA) -> Any:
    """The parsed value of `text` for `key`; InvalidSetting naming the key when unknown or bad."""
    if key not in schema:
        raise InvalidSetting(key, f"unknown setting; the settings are {', '.join(sorted(schema))}")
    try:
        return schema[key].parse(text)
    except ValueError as err:
        raise InvalidSetting(key, str(err)) from None


def effective_texts(stored: Mapping[str, str], tags: tuple[str, ...]) -> dict[str, str]:
    """The stored texts this instance uses: plain keys, then `overrides/{tag}/{key}` for each of its tags on top."""
    texts = {k: v for k, v in stored.items() if "/" not in k}
    for tag in tags:
        texts.update({k.rsplit("/", 1)[1]: v for k, v in stored.items() if k.startswith(f"{OVERRIDES}/{tag}/")})
    return texts


@dataclass
class Rejection:
    revision: int
    errors: dict[str, str]
    at: float


@dataclass
class RuntimeSettings:
    """What one instance applied, thread-safe: the follower thread offers snapshots, calls read `values`."""

    schema: Mapping[str, Setting] = field(default_factory=lambda: dict(SCHEMA))
    tags: tuple[str, ...] = ()
    source: str = "none"
    values: dict[str, Any] = field(init=False)
    revision: int = 0
    applied_at: float | None = None
    rejected: Rejection | None = None
    store_error: str | None = None
    store_error_since: float | None = None
    applied_count: int = 0

    def __post_init__(self) -> None:
        self.values = {name: s.default for name, s in self.schema.items()}
        self._lock = threading.Lock()

    def offer(self, stored: Mapping[str, str], revision: int, source: str) -> bool:
        """Apply the snapshot `stored` (key -> text under the prefix) read at `revision`; False when rejected.

        Keys no longer stored go back to their defaults; an unknown or bad key rejects the whole snapshot.
        """
        texts = effective_texts(stored, self.tags)
        values: dict[str, Any] = {name: s.default for name, s in self.schema.items()}
        errors: dict[str, str] = {}
        for key, text in texts.items():
            try:
                values[key] = validate(key, text, self.schema)
            except InvalidSetting as err:
                errors[key] = str(err)
        with self._lock:
            self.source = source
            self.store_error = self.store_error_since = None
            if errors:
                self.rejected = Rejection(revision, errors, time.time())
                return False
            if revision != self.revision or values != self.values:
                self.values, self.revision, self.applied_at = values, revision, time.time()
                self.applied_count += 1
            self.rejected = None
            return True

    def store_lost(self, error: str) -> None:
        """The store does not answer: keep the last good values and say since when."""
        with self._lock:
            if self.store_error_since is None:
                self.store_error_since = time.time()
            self.store_error = error

    def get(self, key: str) -> Any:
        with self._lock:
            return self.values[key]

    def report(self) -> dict[str, Any]:
        """What /admin/settings answers: effective values, the revision applied, a rejection, the store's state."""
        with self._lock:
            return {
                "source": self.source,
                "values": dict(self.values),
                "revision": self.revision,
                "applied_at": self.applied_at,
                "applied_count": self.applied_count,
                "rejected": None
                if self.rejected is None
                else {"revision": self.rejected.revision, "errors": dict(self.rejected.errors), "at": self.rejected.at},
                "store": "reachable" if self.store_error is None else "unreachable",
                "store_error": self.store_error,
                "store_error_since": self.store_error_since,
                "keeping": None if self.store_error is None else f"last good settings of revision {self.revision}",
            }


SIGNUP_METHODS = ("CreateUser", "ImportUsers")


class SettingsInterceptor(aio.ServerInterceptor):
    """Applies the runtime settings to each user-service call: latency, the sign-up switch, the greeting."""

    def __init__(self, settings: RuntimeSettings, service: str):
        self._settings = settings
        self._service = service

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        service, method = split_method(handler_call_details.method)
        if handler is None or service != self._service:
            return handler
        settings = self._settings

        async def before(context: aio.ServicerContext) -> None:
            latency = settings.get("latency_ms")
            if latency:
                await asyncio.sleep(latency / 1000)
            if method in SIGNUP_METHODS and not settings.get("signups_enabled"):
                await context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"sign-ups are turned off: the setting signups_enabled is false "
                    f"(revision {settings.revision} from {settings.source})",
                )

        def wrap(behavior: Behavior, streaming: bool) -> Behavior:
            async def unary(request, context):
                await before(context)
                return await behavior(request, context)

            async def stream(request, context):
                await before(context)
                async for message in responses(behavior, request, context):
                    if isinstance(message, pb.ChatMessage):
                        message.text = f"{settings.get('greeting')} {message.text}"
                    yield message

            return stream if streaming else unary

        return wrap_handler(handler, wrap)


def export_metrics(settings: RuntimeSettings, registry: Any) -> None:
    """Gauges on /metrics, so Prometheus sees which revision each instance runs and whether its store answers."""
    from prometheus_client import Gauge

    Gauge(
        "lab_settings_revision", "store revision of the runtime settings this instance applied", registry=registry
    ).set_function(lambda: settings.revision)
    Gauge(
        "lab_settings_store_reachable",
        "1 while the configuration store answers, 0 while the last good settings are kept",
        registry=registry,
    ).set_function(lambda: float(settings.store_error is None))
    Gauge(
        "lab_settings_rejected", "1 while the latest stored settings are rejected as invalid", registry=registry
    ).set_function(lambda: float(settings.rejected is not None))
