"""Lesson 11's experiments: gRPC's own balancing, `dns:///` resolution and re-resolution, keepalive, GOAWAY and idle.

    counts = served_counts(lb_channel(addresses, "round_robin"), calls=30)      # Counter of served_by
    time_to_new_instance(cluster, max_connection_age_ms=2000)                   # dns:/// sees a new instance?
    detect_pause(cluster, "user-1", keepalive_options(1000, ping_timeout_ms=1000))

Everything runs on real processes: the lab's instances (paused with SIGSTOP for the keepalive experiments) and
in-process user services on their own loopback addresses, registered in Consul, for the DNS experiments.
"""

from __future__ import annotations

import collections
import json
import signal
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from lab_services.core.ports import PortAllocator
from lab_services.core.wait import wait_until
from lab_services.discovery.dns import a_records, dns_target
from lab_services.runtime.cluster import Auxiliary, Cluster
from lab_services.service import user_pb2, user_pb2_grpc
from lab_services.service.command import ServiceCommand

Options = list[tuple[str, Any]]


def service_config(policy: str) -> str:
    return json.dumps({"loadBalancingConfig": [{policy: {}}]})


def lb_channel(target: str | Sequence[str], policy: str = "pick_first", options: Options = ()) -> grpc.Channel:
    """A channel over `target` (a target string, or addresses for an `ipv4:` target), `policy` in its service config.

    Each channel gets its own subchannel pool, so one experiment's connections never serve another's.
    """
    if policy not in ("pick_first", "round_robin"):
        raise ValueError(f"invalid argument: policy: {policy!r}; use pick_first or round_robin")
    if not isinstance(target, str):
        target = "ipv4:" + ",".join(target)
    return grpc.insecure_channel(
        target,
        options=[("grpc.service_config", service_config(policy)), ("grpc.use_local_subchannel_pool", 1), *options],
    )


def _create(stub: user_pb2_grpc.UserServiceStub, timeout: float | None = 3.0) -> str:
    request = user_pb2.CreateUserRequest(name="lesson 11", email=f"l11-{uuid.uuid4().hex[:12]}@example.com")
    return stub.CreateUser(request, timeout=timeout).served_by


def served_counts(channel: grpc.Channel, calls: int = 30, settle: float = 0.5) -> collections.Counter:
    """Which instance answered each of `calls` CreateUser calls, after `settle` seconds for every subchannel to
    connect."""
    grpc.channel_ready_future(channel).result(timeout=10)
    time.sleep(settle)
    stub = user_pb2_grpc.UserServiceStub(channel)
    return collections.Counter(_create(stub) for _ in range(calls))


class StateLog:
    """Every connectivity state a channel reports (`channel.subscribe`), with seconds since the log started."""

    def __init__(self, channel: grpc.Channel, connect: bool = True):
        self.t0 = time.monotonic()
        self.states: list[tuple[float, str]] = []
        self._channel = channel
        channel.subscribe(self._record, try_to_connect=connect)

    def _record(self, state: grpc.ChannelConnectivity) -> None:
        self.states.append((round(time.monotonic() - self.t0, 3), state.name))

    def now(self) -> float:
        return time.monotonic() - self.t0

    def left_ready_after(self, since: float) -> float | None:
        """Seconds from `since` (on this log's clock) until the first state other than READY, or None."""
        later = [t for t, s in self.states if t >= since and s != "READY"]
        return round(later[0] - since, 2) if later else None

    def close(self) -> None:
        self._channel.unsubscribe(self._record)


def keepalive_options(keepalive_ms: int, timeout_ms: int = 1000, ping_timeout_ms: int | None = None) -> Options:
    """Client keepalive: ping every `keepalive_ms` even without calls; `ping_timeout_ms` is how long an unanswered
    ping may wait (`grpc.http2.ping_timeout_ms`: a real but internal gRPC core option, not among the public channel
    arguments; gRPC core PRs #34647 and #39239. With grpcio 1.85 the public `grpc.keepalive_timeout_ms` alone did not
    end a connection to a paused peer, lesson 11 §3)."""
    options: Options = [
        ("grpc.keepalive_time_ms", keepalive_ms),
        ("grpc.keepalive_timeout_ms", timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    if ping_timeout_ms is not None:
        options.append(("grpc.http2.ping_timeout_ms", ping_timeout_ms))
    return options


def detect_pause(cluster: Cluster, instance: str, options: Options, window: float = 6.0) -> dict[str, Any]:
    """SIGSTOP `instance` under a ready channel with an open WatchUsers stream (no deadline); time what notices.

    A paused process keeps its port and its kernel keeps acknowledging TCP, so only an HTTP/2 ping that goes
    unanswered can tell. The instance is resumed before returning, whatever happens.
    """
    address = next(s.address for s in cluster.status().services if s.id == instance)

    def resume() -> None:
        if any(s.id == instance and s.state == "paused" for s in cluster.status().services):
            cluster.resume(instance)

    # cluster.pause returns once the kernel reports the process stopped: the clock starts there.
    result, _ = watch_through_pause(address, options, lambda: cluster.pause(instance), resume, window=window)
    return result


def watch_through_pause(
    address: str,
    options: Options,
    pause: Callable[[], Any],
    resume: Callable[[], Any],
    quiet: float = 0.3,
    window: float = 6.0,
) -> tuple[dict[str, Any], str | None]:
    """Open a WatchUsers stream (no deadline) to `address` over a channel with `options`, leave it quiet for `quiet`
    seconds, then `pause()` the server and time what notices within `window`; `resume()` runs whatever happens.

    Returns the measurement and, when the server ended the healthy stream while it was still quiet (a GOAWAY, such
    as `too_many_pings`), how: then nothing was paused.
    """
    channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1), *options])
    log = StateLog(channel)
    stream, pausing, paused, thrown_off = None, False, None, None
    ended_at: list[float] = []
    ended = threading.Event()
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
        opened = log.now()
        stream = user_pb2_grpc.UserServiceStub(channel).WatchUsers(user_pb2.WatchUsersRequest())
        stream.add_done_callback(lambda _call: (ended_at.append(log.now()), ended.set()))
        if ended.wait(quiet):  # a healthy stream ends only when the server throws the connection off (GOAWAY)
            thrown_off = f"{stream.code().name} ({stream.details()}) after {ended_at[0] - opened:.1f} s"
        else:
            pausing = True
            pause()
            paused = log.now()
            ended.wait(window)
        # Read before the stream is cancelled below, which ends it too.
        end, code = (ended_at[0], stream.code().name) if ended.is_set() else (None, "still open")
    finally:
        if pausing:
            resume()
        if stream is not None:
            stream.cancel()
        log.close()
        channel.close()
    measured = {
        "options": {k.removeprefix("grpc."): v for k, v in options} or "none",
        "left READY after s": log.left_ready_after(paused) if paused is not None else None,
        "stream ended after s": round(end - paused, 2) if end is not None and paused is not None else None,
        "stream status": code,
        "window s": window,
    }
    return measured, thrown_off


class PingPolicyInstance:
    """One more user-service process beside the lab, serving with `server_options` (e.g. its ping policy), that a
    checker may pause and resume without touching the lab's own instances. A context manager: it stops on exit."""

    def __init__(self, cluster: Cluster, server_options: Options):
        self.cluster = cluster
        self.host = cluster.auxiliary_host()
        ports = PortAllocator()
        self.id = f"pings-{uuid.uuid4().hex[:4]}"
        flags = [f"--server-option={name}={value}" for name, value in server_options]
        self.command = ServiceCommand(
            host=self.host,
            port=ports.free(),
            http_port=ports.free(),
            name="pings",
            instance_id=self.id,
            options=[*flags, "--grace", "0.5"],
        )
        self.child: Any = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.command.port}"

    def __enter__(self) -> PingPolicyInstance:
        self.child = self.cluster.start_auxiliary(Auxiliary.SERVICE, self.id, self.command.flags(), self.host)
        try:
            with grpc.insecure_channel(self.address) as channel:
                grpc.channel_ready_future(channel).result(timeout=20)
        except grpc.FutureTimeoutError:
            log = self.child.tail(10)
            self.child.stop(timeout=5)
            raise RuntimeError(f"{self.id} never served on {self.address}; its log ends:\n{log}") from None
        return self

    def pause(self) -> None:
        self.child.send(signal.SIGSTOP)

    def resume(self) -> None:
        self.child.send(signal.SIGCONT)

    def __exit__(self, *exc: object) -> None:
        self.child.stop(timeout=5)


def too_many_pings(address: str, keepalive_ms: int = 1000, window: float = 8.0) -> dict[str, Any]:
    """Ping a server with no call open more often than it allows; when it answered with GOAWAY (the channel goes
    IDLE).

    The lab's servers keep gRPC's defaults: with no call open (`grpc.keepalive_permit_without_calls` 0) a C-core
    server accepts one ping per two hours; each earlier ping is a strike, and after `grpc.http2.max_ping_strikes` (2)
    it sends GOAWAY `ENHANCE_YOUR_CALM` with debug data `too_many_pings`.
    """
    channel = grpc.insecure_channel(
        address, options=[("grpc.use_local_subchannel_pool", 1), *keepalive_options(keepalive_ms)]
    )
    log = StateLog(channel)
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
        ready = log.now()
        time.sleep(window)
    finally:
        log.close()
        channel.close()
    return {"keepalive ms": keepalive_ms, "GOAWAY after s": log.left_ready_after(ready), "states": log.states}


def quiet_stream_pings(address: str, keepalive_ms: int = 1000, window: float = 8.0) -> dict[str, Any]:
    """Ping a server more often than it allows while a quiet call is open (a WatchUsers stream nothing writes to):
    how the healthy stream ended, and when.

    With a call open the server's limit is `grpc.http2.min_ping_interval_without_data_ms` (5 minutes by default)
    while no data flows; pinging faster earns the same strikes and GOAWAY, and the open stream ends UNAVAILABLE. A
    stream the server let live ends DEADLINE_EXCEEDED at `window`.
    """
    channel = grpc.insecure_channel(
        address, options=[("grpc.use_local_subchannel_pool", 1), *keepalive_options(keepalive_ms)]
    )
    started = time.monotonic()
    code, details = "OK", ""
    try:
        for _ in user_pb2_grpc.UserServiceStub(channel).WatchUsers(user_pb2.WatchUsersRequest(), timeout=window):
            pass
    except grpc.RpcError as err:
        code, details = err.code().name, err.details()
    finally:
        channel.close()
    return {
        "keepalive ms": keepalive_ms,
        "stream ended after s": round(time.monotonic() - started, 1),
        "code": code,
        "details": details,
    }


def idle_states(address: str, idle_ms: int = 1000, wait: float = 3.0) -> list[tuple[float, str]]:
    """A channel with `grpc.client_idle_timeout_ms`: one call, then silence; the states it passes through."""
    channel = grpc.insecure_channel(
        address, options=[("grpc.use_local_subchannel_pool", 1), ("grpc.client_idle_timeout_ms", idle_ms)]
    )
    log = StateLog(channel)
    try:
        _create(user_pb2_grpc.UserServiceStub(channel))
        time.sleep(wait)
    finally:
        log.close()
        channel.close()
    return log.states


class DnsFleet:
    """Instances of the user service on addresses of their own and the lab's shared port, registered in Consul as
    `name`: processes beside the lab, which the runtime places (own loopback addresses here, containers of their own
    on compose), each registering itself with a 1 s gRPC check."""

    def __init__(self, cluster: Cluster, name: str, max_connection_age_ms: int | None = None, first_index: int = 21):
        status = cluster.status()
        if status.config.instance_addresses != "distinct":
            raise ValueError(
                "invalid argument: cluster: dns:/// needs instance_addresses='distinct' (one address per instance)"
            )
        self.cluster = cluster
        self.name = name
        self.port = status.services[0].instance.port  # the port every instance shares
        self.consul = status.consul.http[0]
        self.dns = status.consul.dns
        self.max_connection_age_ms = max_connection_age_ms
        self.next_index = first_index
        self.members: list[Any] = []

    @property
    def target(self) -> str:
        return dns_target(self.name, self.dns, self.port)

    def add(self) -> str:
        """Start and register one more instance; its id once Consul DNS answers with its address."""
        host = self.cluster.auxiliary_host(self.next_index)
        options = ["--max-connection-age-ms", str(self.max_connection_age_ms)] if self.max_connection_age_ms else []
        command = ServiceCommand(
            host=host,
            port=self.port,
            http_port=PortAllocator().free(),
            name=self.name,
            instance_id=f"{self.name}-{self.next_index}",
            registry="consul",
            consul=self.consul,
            options=options,
        )
        self.next_index += 1
        member = self.cluster.start_auxiliary(Auxiliary.SERVICE, command.instance_id, command.flags(), host)
        self.members.append(member)
        wait_until(
            lambda: host in a_records(self.name, self.dns),
            20,
            f"{host} in Consul DNS for {self.name}",
            seen=lambda: member.tail(5),
        )
        return command.instance_id

    def stop(self) -> None:
        """SIGTERM each: it deregisters, then exits."""
        for member in self.members:
            member.stop()
        self.members.clear()


def time_to_new_instance(
    cluster: Cluster, max_connection_age_ms: int | None, window: float = 10.0, min_resolution_ms: int = 1000
) -> dict[str, Any]:
    """A round_robin `dns:///` channel over two instances; a third registers. Seconds until it gets a call, or None.

    gRPC's DNS resolver resolves when the channel starts and again only when a connection is lost, and never
    more often than `grpc.dns_min_time_between_resolutions_ms` (30 s by default; 1 s here). With
    `max_connection_age_ms` the servers close every connection after that age (GOAWAY), which makes it resolve.
    """
    fleet = DnsFleet(
        cluster, f"dns{'aged' if max_connection_age_ms else 'plain'}-{uuid.uuid4().hex[:4]}", max_connection_age_ms
    )
    channel = None
    try:
        fleet.add()
        fleet.add()
        channel = lb_channel(
            fleet.target, "round_robin", [("grpc.dns_min_time_between_resolutions_ms", min_resolution_ms)]
        )
        before = served_counts(channel, 10)
        newcomer = fleet.add()
        added = time.monotonic()
        stub = user_pb2_grpc.UserServiceStub(channel)
        seen, calls, failed = None, 0, 0
        while time.monotonic() - added < window:
            try:
                calls += 1
                if _create(stub) == newcomer:
                    seen = round(time.monotonic() - added, 2)
                    break
            except grpc.RpcError:
                failed += 1
            time.sleep(0.02)
        return {
            "max_connection_age_ms": max_connection_age_ms,
            "before": dict(before),
            "new instance": newcomer,
            "first call to it after s": seen,
            "calls made": calls,
            "failed calls": failed,
            "window s": window,
        }
    finally:
        if channel is not None:
            channel.close()
        fleet.stop()


def reuse_vs_per_call(address: str, calls: int = 50) -> list[dict[str, Any]]:
    """Median and worst ms per CreateUser over one reused channel, and over a new channel per call (a connection
    each). The two take turns call by call, so whatever else loads the machine weighs on both alike."""
    reused, per_call = "one channel, reused", "a new channel per call"
    times: dict[str, list[float]] = {reused: [], per_call: []}
    shared = grpc.insecure_channel(address)
    try:
        for _ in range(calls):
            for label in (reused, per_call):
                started = time.perf_counter()
                channel = (
                    shared
                    if label == reused
                    else grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
                )
                try:
                    _create(user_pb2_grpc.UserServiceStub(channel))
                finally:
                    if channel is not shared:
                        channel.close()
                times[label].append(1000 * (time.perf_counter() - started))
    finally:
        shared.close()
    return [
        {
            "how": label,
            "calls": calls,
            "connections opened": 1 if label == reused else calls,
            # The median, not the mean: one call held up by the machine (a 200 ms stall) would decide a mean.
            "median ms": round(statistics.median(taken), 2),
            "worst ms": round(max(taken), 2),
        }
        for label, taken in times.items()
    ]


def kill_side_by_side(cluster: Cluster, victim: str = "user-3", window: float = 4.0) -> list[dict[str, Any]]:
    """Calls through a `dns:///` round_robin channel and through the lab's NativeChannel (a Consul watcher feeding an
    `ipv4:` target) while `victim` is killed with SIGKILL; per channel: failed calls, and calls per instance after.

    gRPC Python takes no custom resolver, so the NativeChannel rebuilds its `ipv4:` target when the watcher drops
    the instance; the DNS channel relies on round_robin skipping a broken connection and re-resolving. The victim is
    started again before returning.
    """
    from lab_services.discovery import ConsulWatcher, NativeChannel

    status = cluster.status()
    port = status.services[0].instance.port
    watcher = ConsulWatcher(status.config.service_name, status.consul.http, wait="5s").start()
    watcher.wait_ready(10)
    channels = {
        "dns:/// round_robin": lb_channel(
            dns_target(status.config.service_name, status.consul.dns, port),
            "round_robin",
            [("grpc.dns_min_time_between_resolutions_ms", 1000)],
        ),
        "NativeChannel (watcher -> ipv4:)": NativeChannel(watcher),
    }
    results: dict[str, list[tuple[float, str]]] = {name: [] for name in channels}
    killed = threading.Event()
    kill_at: list[float] = []

    def traffic(name: str, channel: grpc.Channel) -> None:
        stub = user_pb2_grpc.UserServiceStub(channel)
        end = time.monotonic() + window
        while time.monotonic() < end:
            started = time.monotonic()
            try:
                outcome = _create(stub, timeout=1.0)
            except grpc.RpcError as err:
                outcome = f"failed: {err.code().name}"
            results[name].append((started, outcome))
            time.sleep(0.01)

    try:
        for channel in channels.values():
            served_counts(channel, 6, settle=0.3)
        threads = [threading.Thread(target=traffic, args=item) for item in channels.items()]
        for thread in threads:
            thread.start()
        time.sleep(window / 4)
        cluster.kill(victim)
        kill_at.append(time.monotonic())  # after the kill returned: a call that began before it may still be answered
        killed.set()
        for thread in threads:
            thread.join(window + 5)
    finally:
        for channel in channels.values():
            channel.close()
        watcher.stop()
        if killed.is_set():
            cluster.start(victim)
    rows = []
    for name, calls in results.items():
        after = [outcome for started, outcome in calls if started >= kill_at[0]]
        served = collections.Counter(o for o in after if not o.startswith("failed"))
        rows.append(
            {
                "channel": name,
                "calls after the kill": len(after),
                "failed": sum(o.startswith("failed") for o in after),
                f"served by {victim}": served.pop(victim, 0),
                "served by the others": dict(served),
            }
        )
    return rows
