"""Lesson 13's traced system: a client, the `gateway` service and two user instances, each exporting its spans
over OTLP to the lab's receiver, and the views a lesson needs (a span table, a waterfall, latency per peer)."""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import format_trace_id

from lab_services.core.instance import ServiceInstance
from lab_services.core.network import KERNEL_HOST_ENV
from lab_services.core.table import Table
from lab_services.discovery import ConsulWatcher
from lab_services.lessons.measured import Expected, compare
from lab_services.registry import CheckSpec, ConsulRegistrar, ServiceRegistration
from lab_services.service import UserServer, user_pb2, user_pb2_grpc
from lab_services.service.store import UserStore
from lab_services.tracing import ClientTracing, OtlpReceiver, ReceivedSpan, ServerTracing, tracer_provider
from lab_services.tracing.gateway import LABEL_META, Gateway, GatewayServer

SERVICE_COLOURS = {"client": "#6e7781", "gateway": "#0969da", "user": "#1a7f37"}


class TracedSystem:
    """client -> gateway -> user-1 / user-2, real gRPC on kernel_host(), every span exported to one OTLP receiver.

    The user instances share one store (so any of them can answer for the same user) and run the lab's own
    UserServer with a tracing interceptor; the gateway retries UNAVAILABLE on the next instance.

    With `consul_http` (the lab's Consul servers) the instances register there, with a gRPC health check, as
    service `traced-user-XXXX` (ids `traced-user-XXXX-N`, meta `instance=user-N` for the spans), and the gateway
    finds them through a ConsulWatcher instead of fixed addresses; stopping deregisters them.
    """

    def __init__(
        self, instances: int = 2, attempts: int = 3, per_try_timeout: float = 1.0, consul_http: list[str] | None = None
    ):
        if not 1 <= instances <= 5:
            raise ValueError(f"invalid argument: instances: {instances}; use 1 to 5")
        if consul_http is not None and (isinstance(consul_http, str) or not consul_http):
            raise ValueError(
                f"invalid argument: consul_http: {consul_http!r}; give a list of Consul HTTP addresses, "
                "e.g. cluster.status().consul.http"
            )
        self.instances, self.attempts, self.per_try_timeout = instances, attempts, per_try_timeout
        self.consul_http = list(consul_http) if consul_http else None
        # A name of its own per system, so a rerun never finds the registrations of an earlier one.
        self.service = f"traced-user-{uuid.uuid4().hex[:4]}"
        self.registrars: list[ConsulRegistrar] = []
        self.watcher: ConsulWatcher | None = None
        self.receiver = OtlpReceiver()
        self.providers: dict[str, TracerProvider] = {}
        self.users: list[UserServer] = []
        self.user_tracing: list[ServerTracing] = []  # the user instances' interceptors, which `annotate` extends
        self.gateway: GatewayServer | None = None
        self.user_id = ""
        self._channel: grpc.Channel | None = None

    def start(self) -> TracedSystem:
        try:
            self.receiver.start()
            endpoint = self.receiver.endpoint
            self.providers = {name: tracer_provider(name, endpoint) for name in ("client", "gateway", "user")}
            store = UserStore()
            self.user_id = store.create("Ada Lovelace", "ada@example.com").id
            user_tracer = self.providers["user"].get_tracer("lab.user")
            for i in range(1, self.instances + 1):
                self.user_tracing.append(ServerTracing(user_tracer, f"user-{i}"))
                self.users.append(
                    UserServer(
                        instance_id=f"user-{i}",
                        server_kind="threads",
                        store=store,
                        interceptors=(self.user_tracing[-1],),
                    ).start()
                )
            targets = self._discover() if self.consul_http else {u.instance_id: u.address for u in self.users}
            gateway = Gateway(targets, self.providers["gateway"], self.attempts, self.per_try_timeout)
            self.gateway = GatewayServer(gateway).start()
            client_tracer = self.providers["client"].get_tracer("lab.client")
            self._channel = grpc.intercept_channel(
                grpc.insecure_channel(self.gateway.address), ClientTracing(client_tracer, "gateway")
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _discover(self) -> ConsulWatcher:
        """Register every instance in Consul (gRPC check every 1 s) and a started watcher once all of them pass."""
        for user in self.users:
            registration = ServiceRegistration(
                ServiceInstance(
                    id=f"{self.service}-{user.instance_id.rsplit('-', 1)[-1]}",
                    name=self.service,
                    host=user.host,
                    port=user.port,
                    meta={LABEL_META: user.instance_id},
                ),
                checks=(CheckSpec("grpc", interval="1s", timeout="1s"),),
            )
            self.registrars.append(ConsulRegistrar(registration, consul_http=self.consul_http[0]).start())
        self.watcher = ConsulWatcher(self.service, self.consul_http, wait="5s").start()
        if not self.watcher.wait_for(lambda found: len(found) == len(self.users), 20):
            raise RuntimeError(
                f"Consul at {self.consul_http[0]} never listed the {len(self.users)} instances of {self.service} "
                f"as passing; its gRPC checks must reach this kernel at {self.users[0].host} "
                f"(set {KERNEL_HOST_ENV} to the kernel's address on the lab's network)"
            )
        return self.watcher

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self.gateway is not None:
            self.gateway.stop()
        for registrar in self.registrars:
            registrar.stop()  # deregisters
        if self.watcher is not None:
            self.watcher.stop()
        for user in self.users:
            user.stop(grace=0.5)
        for provider in self.providers.values():
            provider.shutdown()
        self.receiver.stop()
        self.users, self.providers, self.gateway, self._channel, self.registrars, self.watcher = (
            [],
            {},
            None,
            None,
            [],
            None,
        )
        self.user_tracing = []

    def __enter__(self) -> TracedSystem:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def annotate(self, hook: Callable[[Any, Any], None] | None) -> None:
        """Run `hook(span, request)` in every user instance's SERVER span from now on (None: stop)."""
        for tracing in self.user_tracing:
            tracing.annotate = hook

    def instance(self, name: str) -> UserServer:
        for user in self.users:
            if user.instance_id == name:
                return user
        raise KeyError(f"no instance {name!r}; the instances are {', '.join(u.instance_id for u in self.users)}")

    def call(self, deadline: float = 2.0, name: str = "show profile") -> tuple[str, str]:
        """One GetUser from the client under a root span `name`; returns (trace id, final status code name)."""
        tracer = self.providers["client"].get_tracer("lab.client")
        with tracer.start_as_current_span(name) as root:
            trace_id = format_trace_id(root.get_span_context().trace_id)
            try:
                user_pb2_grpc.UserServiceStub(self._channel).GetUser(
                    user_pb2.GetUserRequest(id=self.user_id), timeout=deadline
                )
                code = "OK"
            except grpc.RpcError as err:
                code = err.code().name
        return trace_id, code

    def trace(self, trace_id: str, at_least: int = 1, timeout: float = 10.0) -> list[ReceivedSpan]:
        """The spans of one trace as the receiver got them over OTLP (each service's batch flushed first)."""
        for provider in self.providers.values():
            provider.force_flush()
        return self.receiver.wait_for_trace(trace_id, at_least, timeout)


def overview(system: TracedSystem) -> Table:
    """Where each part of a started `system` listens, and for each user instance how the gateway knows it: through
    Consul (its passing instances of `system.service`), as a fixed address, or not at all (yet)."""
    targets = system.gateway.gateway.targets() if system.gateway else {}
    found = f"through Consul, a passing instance of {system.service}" if system.consul_http else "a fixed address"
    return Table(
        [
            {"part": "OTLP receiver", "address": system.receiver.endpoint, "the gateway's target": "-"},
            {
                "part": "gateway",
                "address": system.gateway.address if system.gateway else None,
                "the gateway's target": "-",
            },
            *(
                {
                    "part": user.instance_id,
                    "address": user.address,
                    "the gateway's target": found if user.instance_id in targets else "not (yet) a target",
                }
                for user in system.users
            ),
        ]
    )


def span_table(spans: list[ReceivedSpan]) -> Table:
    """One row per span, indented under its parent, with offsets from the trace's first span."""
    if not spans:
        return Table([])
    origin = min(s.start_ns for s in spans)
    depth = _depths(spans)
    return Table(
        [
            {
                "span": "  " * depth[s.span_id] + s.name,
                "service": s.service,
                "kind": s.kind,
                "instance": s.attributes.get("lab.instance") or s.attributes.get("net.peer", ""),
                "starts at ms": round((s.start_ns - origin) / 1e6, 1),
                "ms": round(s.ms, 1),
                "status": s.grpc_status or ("ERROR" if s.error else "OK"),
                "events": "; ".join(f"{n} {a}" for n, _, a in s.events),
            }
            for s in _tree_order(spans)
        ]
    )


def _depths(spans: list[ReceivedSpan]) -> dict[str, int]:
    by_id = {s.span_id: s for s in spans}
    depth: dict[str, int] = {}
    for span in spans:
        d, parent = 0, span.parent_id
        while parent in by_id and d < 50:
            d, parent = d + 1, by_id[parent].parent_id
        depth[span.span_id] = d
    return depth


def _tree_order(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    """Depth-first from the roots, children by start time: the order a waterfall reads in."""
    ids = {s.span_id for s in spans}
    children: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        children[span.parent_id if span.parent_id in ids else ""].append(span)
    ordered: list[ReceivedSpan] = []

    def walk(parent: str) -> None:
        for span in sorted(children[parent], key=lambda s: s.start_ns):
            ordered.append(span)
            walk(span.span_id)

    walk("")
    return ordered


def plot_waterfall(
    spans: list[ReceivedSpan], ax: Any = None, title: str = "", label: Callable[[ReceivedSpan], Any] | None = None
) -> Any:
    """A trace as a waterfall: one bar per span, nested under its parent, coloured by service, errors hatched.

    `label(span)`, when given, adds its answer to the span's row (nothing for a span it answers None or '' for):
    how an attribute of your own shows up next to the lab's.
    """
    import matplotlib.pyplot as plt

    ordered = _tree_order(spans)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.45 * len(ordered) + 1))
    origin = min(s.start_ns for s in ordered)
    depth = _depths(ordered)
    for row, span in enumerate(ordered):
        start = (span.start_ns - origin) / 1e6
        ax.barh(
            row,
            span.ms,
            left=start,
            color=SERVICE_COLOURS.get(span.service, "#8250df"),
            hatch="//" if span.error else None,
            edgecolor="#cf222e" if span.error else "none",
        )
        for _, at, _ in span.events:
            ax.plot((at - origin) / 1e6, row, marker="|", color="black", markersize=12)
    labels = [
        f"{'  ' * depth[s.span_id]}{s.service}: {s.name}"
        + (
            f" ({s.attributes.get('lab.instance') or s.attributes.get('net.peer')})"
            if s.kind in ("server", "client") and s.service != "client"
            else ""
        )
        + _extra(label, s)
        for s in ordered
    ]
    ax.set_yticks(range(len(ordered)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("ms since the trace began (| marks an event)")
    ax.set_title(title)
    ax.figure.tight_layout()
    return ax


def _extra(label: Callable[[ReceivedSpan], Any] | None, span: ReceivedSpan) -> str:
    extra = label(span) if label is not None else None
    return f" · {extra}" if extra not in (None, "") else ""


def latency_by_peer(spans: list[ReceivedSpan]) -> Table:
    """The gateway's CLIENT spans grouped by the instance they called: where a slow instance shows up."""
    by_peer: dict[str, list[float]] = defaultdict(list)
    for span in spans:
        if span.service == "gateway" and span.kind == "client":
            by_peer[span.attributes.get("net.peer", "?")].append(span.ms)
    return Table(
        [
            {"peer": peer, "calls": len(ms), "median ms": round(statistics.median(ms), 1), "max ms": round(max(ms), 1)}
            for peer, ms in sorted(by_peer.items())
        ]
    )


def _first_trace(system: TracedSystem, wanted: Any, deadline: float, name: str) -> tuple[str, str, list[ReceivedSpan]]:
    """Call (at most once per instance, since the gateway takes them in turn) until a trace shows `wanted`."""
    for _ in range(len(system.users) + 1):
        trace_id, code = system.call(deadline=deadline, name=name)
        spans = system.trace(trace_id, 3)
        if wanted(code, spans):
            return trace_id, code, spans
    raise RuntimeError(f"no call of {len(system.users) + 1} showed what {name!r} looks for; is the fault set?")


def retry_trace(system: TracedSystem, failing: str = "user-1") -> tuple[str, list[ReceivedSpan]]:
    """`failing` answers UNAVAILABLE to everything; the trace of a call whose first attempt went there."""
    system.instance(failing).faults.set(error_rate=1.0)
    try:
        _, code, spans = _first_trace(
            system,
            lambda code, spans: any(n == "attempt failed" for s in spans for n, _, _ in s.events),
            2.0,
            "show profile (one instance failing)",
        )
    finally:
        system.instance(failing).faults.set(error_rate=0.0)
    return code, system.trace(spans[0].trace_id, 6)


def deadline_trace(
    system: TracedSystem, slow: str = "user-2", latency_ms: float = 400, deadline: float = 0.3
) -> tuple[str, list[ReceivedSpan]]:
    """`slow` takes `latency_ms`; a call with a shorter `deadline` whose attempt went there, as traced."""
    system.instance(slow).faults.set(latency_ms=latency_ms)
    try:
        _, code, spans = _first_trace(
            system,
            lambda code, spans: code == "DEADLINE_EXCEEDED",
            deadline,
            f"show profile (deadline {deadline * 1000:.0f} ms)",
        )
    finally:
        system.instance(slow).faults.set(latency_ms=0)
    return code, spans


def slow_instance_traffic(
    system: TracedSystem, slow: str, latency_ms: float = 150, calls: int = 12
) -> list[ReceivedSpan]:
    """`calls` calls while `slow` takes `latency_ms` more per call; every span they produced."""
    system.receiver.clear()
    system.instance(slow).faults.set(latency_ms=latency_ms)
    try:
        ids = [system.call(deadline=2.0, name="show profile")[0] for _ in range(calls)]
    finally:
        system.instance(slow).faults.set(latency_ms=0)
    return [span for trace_id in ids for span in system.trace(trace_id, 5)]


# -- what the learner's run measured ---------------------------------------------------------------------------
_LOADED = "the machine is loaded (another notebook, a test run)"
ONE_CALL = Expected(
    "section 1: one call through the gateway, the client's root span",
    "ms",
    0,
    50,
    "",
    "the first call also opened the connections (client to gateway, gateway to user), or " + _LOADED,
)
FAILED_ATTEMPT = Expected(
    "section 2: the failed attempt, refused with UNAVAILABLE", "ms", 0, 10, "", "refusals take about a ms; " + _LOADED
)
RETRIED_CALL = Expected(
    "section 2: the whole call, failed attempt and retry",
    "ms",
    0,
    30,
    "",
    "a new connection to the second instance, or " + _LOADED,
)


def deadline_figures(deadline: float) -> tuple[Expected, Expected]:
    """What section 3 expects for a client deadline of `deadline` seconds: the attempt's `rpc.timeout_ms`, and how
    long the attempt ran until DEADLINE_EXCEEDED."""
    ms = deadline * 1000
    return (
        Expected(
            f"section 3: the attempt's rpc.timeout_ms (the client gave {ms:.0f} ms)",
            "ms",
            ms - 20,
            ms + 1,
            "the gateway spent over 20 ms before its attempt (read its SERVER span), or " + _LOADED,
            "more than the client had left: the deadline did not travel, the gateway used its own timeout",
        ),
        Expected(
            "section 3: the attempt, until DEADLINE_EXCEEDED",
            "ms",
            ms - 20,
            ms + 30,
            "it ended before the deadline, so not by it: read its status in the span table",
            "the cancellation reached the gateway late: " + _LOADED,
        ),
    )


def what_you_saw(
    spans: list[ReceivedSpan], retry_spans: list[ReceivedSpan], deadline_attempt: ReceivedSpan, deadline: float
) -> Table:
    """Lesson 13's figures from this run, read off its own spans, beside the ranges the lab expects and what a figure
    outside one means."""
    failed = next(s for s in retry_spans if s.service == "gateway" and s.kind == "client" and s.error)
    timeout, ended = deadline_figures(deadline)
    return compare(
        [
            (ONE_CALL, _root(spans).ms),
            (FAILED_ATTEMPT, failed.ms),
            (RETRIED_CALL, _root(retry_spans).ms),
            (timeout, deadline_attempt.attributes["rpc.timeout_ms"]),
            (ended, deadline_attempt.ms),
        ]
    )


def _root(spans: list[ReceivedSpan]) -> ReceivedSpan:
    """The trace's root: the client's own span, the one with no parent."""
    return next(s for s in spans if not s.parent_id)


@dataclass(frozen=True)
class SlowMystery:
    """The spans of `calls` calls while one instance answered `latency_ms` slower; which one, only the lab knows
    (`slow` is left out of the repr, and the spans are all a learner should need)."""

    spans: list[ReceivedSpan]
    calls: int
    latency_ms: float
    slow: str = field(repr=False)


def slow_mystery(
    system: TracedSystem, latency_ms: float = 150, calls: int = 12, slow: str = "", busy_ms: float = 5.0
) -> SlowMystery:
    """Make one instance (`slow`, or one chosen at random) slower, send `calls` calls, and keep their spans.

    The slow one waits before its handler runs, as a request stuck in a queue would, so its own SERVER spans stay
    short; the others spend `busy_ms` of work inside theirs. Only the caller's spans show who kept it waiting.
    """
    slow = slow or random.choice([u.instance_id for u in system.users])

    def busy(span: Any, request: Any) -> None:
        if span.attributes.get("lab.instance") != slow:
            time.sleep(busy_ms / 1000)

    system.annotate(busy)
    try:
        spans = slow_instance_traffic(system, slow, latency_ms, calls)
    finally:
        system.annotate(None)
    return SlowMystery(spans, calls, latency_ms, slow)
