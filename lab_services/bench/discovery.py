"""Discovery under change: how soon a new instance gets calls, how soon a killed one stops, what discovery costs a call.

Each benchmark runs its own small lab (1 Consul, 1 etcd, 3 services, no Prometheus) in a temporary
directory, calls it through a discovery-aware channel (`mode` picker or native) fed by a watcher on
`registry` (consul or etcd), and takes the lab down again.
"""

from __future__ import annotations

import contextlib
import itertools
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lab_services.core.progress import OnStep
from lab_services.discovery import ConsulWatcher, EtcdWatcher, NativeChannel, PickerChannel, Watcher
from lab_services.discovery.channel import DiscoveryChannel
from lab_services.discovery.native_channel import SERVICE_CONFIG, static_target
from lab_services.runtime import Cluster, open_cluster, processes
from lab_services.runtime.config import ClusterConfig
from lab_services.service import user_pb2, user_pb2_grpc

SMALL = ClusterConfig(consul_servers=1, etcd_members=1, services=3, prometheus=False)
REGISTRIES = ("consul", "etcd")
MODES = ("picker", "native")
TARGETS = {
    # Process start to first served call is mostly Python start-up; listed to first call is discovery itself.
    "propagation": {"consul": 1.0, "etcd": 0.7},
    "listed_to_first_call": 0.02,
    "failover": {"picker": 1.0, "native": 1.5},
    # Against gRPC's own round_robin over the same addresses: what discovery adds, not what three processes cost.
    "overhead": 0.95,
}
_numbers = itertools.count()


def _request() -> user_pb2.CreateUserRequest:
    n = next(_numbers)
    return user_pb2.CreateUserRequest(name=f"bench {n}", email=f"bench{n}-{time.monotonic_ns()}@example.com")


@contextlib.contextmanager
def small_lab() -> Iterator[Cluster]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        cluster = open_cluster(Path(tmp), "local")
        try:
            cluster.launch(SMALL)
            yield cluster
        finally:
            cluster.down()


def _check(registry: str, mode: str) -> None:
    """Before a lab starts, not after: a typo should cost nothing."""
    if registry not in REGISTRIES:
        raise ValueError(f"invalid argument: registry: {registry!r}; use {' or '.join(REGISTRIES)}")
    if mode not in MODES:
        raise ValueError(f"invalid argument: mode: {mode!r}; use {' or '.join(MODES)}")


def _watcher(cluster: Cluster, registry: str) -> Watcher:
    status = cluster.status()
    if registry == "consul":
        return ConsulWatcher("user", status.consul.http).start()
    return EtcdWatcher("user", status.etcd.endpoints).start()


def _channel(watcher: Watcher, mode: str) -> DiscoveryChannel:
    return PickerChannel(watcher, "round_robin", retries=2) if mode == "picker" else NativeChannel(watcher)


@contextlib.contextmanager
def _discovery(cluster: Cluster, registry: str, mode: str) -> Iterator[DiscoveryChannel]:
    """A channel over the running instances, returned once the watcher lists all of them."""
    running = {s.id for s in cluster.status().services if s.state == "running"}
    watcher = _watcher(cluster, registry)
    try:
        if not watcher.wait_for(lambda xs: {i.id for i in xs} == running, 15):
            raise RuntimeError(
                f"{watcher.where} never listed {sorted(running)}; it lists {[i.id for i in watcher.instances()]}"
            )
        with _channel(watcher, mode) as channel:
            yield channel
    finally:
        watcher.stop()


def _summary(name: str, registry: str, mode: str, runs: int) -> dict[str, Any]:
    return {"benchmark": name, "registry": registry, "mode": mode, "runs": runs}


# -- propagation -----------------------------------------------------------------------------------------


def _one_propagation(cluster: Cluster, channel: DiscoveryChannel, timeout: float) -> dict[str, Any]:
    stub = user_pb2_grpc.UserServiceStub(channel)
    known = {s.id for s in cluster.status().services}
    first_call: dict[str, float] = {}
    stop = threading.Event()

    def poll() -> None:
        # Paced, so the poller leaves the two cores to the process that is starting up.
        while not stop.is_set():
            try:
                who = stub.CreateUser(_request(), timeout=2).served_by
            except grpc.RpcError:
                who = None
            if who is not None and who not in known:
                first_call.setdefault(who, time.time())
            time.sleep(0.002)

    poller = threading.Thread(target=poll, name="bench-propagation", daemon=True)
    poller.start()
    try:
        added = cluster.add_service()
        name = added["name"]
        # add_service returns once Consul passes the instance; the clock starts at the process's birth.
        spawned = psutil.Process(added["pid"]).create_time()
        deadline = time.monotonic() + timeout
        while name not in first_call and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        stop.set()
        poller.join(5)
    if name not in first_call:
        raise RuntimeError(f"{name} answered no call through the {channel.__class__.__name__} within {timeout:g} s")
    listed = next(e.at for e in channel.watcher.events if e.kind == "added" and e.instance.id == name)
    cluster.stop(name)  # the next run starts again from three instances
    return {
        "instance": name,
        "seconds": first_call[name] - spawned,
        "spawn_to_listed": listed - spawned,
        "listed_to_call": first_call[name] - listed,
    }


def propagation(
    registry: str = "consul", mode: str = "picker", runs: int = 5, timeout: float = 15.0, progress: OnStep | None = None
) -> dict[str, Any]:
    """Seconds from a new instance's process start, and from its listing in the registry, to its first answered call.

    The two are reported apart because they measure different things: start to first call is mostly the
    new Python process importing gRPC and binding (and, in Consul, its first check); listed to first call
    is what discovery itself costs.
    """
    _check(registry, mode)
    samples = []
    with small_lab() as cluster, _discovery(cluster, registry, mode) as channel:
        for n in range(runs):
            _report(progress, n, runs, "propagation")
            samples.append(_one_propagation(cluster, channel, timeout))
    seconds = [s["seconds"] for s in samples]
    return {
        **_summary("propagation", registry, mode, runs),
        "median_seconds_start_to_first_call": round(statistics.median(seconds), 3),
        "max_seconds_start_to_first_call": round(max(seconds), 3),
        "median_seconds_start_to_listed": round(statistics.median(s["spawn_to_listed"] for s in samples), 3),
        "median_seconds_listed_to_first_call": round(statistics.median(s["listed_to_call"] for s in samples), 4),
        "target_seconds_start_to_first_call": TARGETS["propagation"][registry],
        "target_seconds_listed_to_first_call": TARGETS["listed_to_first_call"],
        "samples": [{k: round(v, 3) if isinstance(v, float) else v for k, v in s.items()} for s in samples],
    }


# -- failover --------------------------------------------------------------------------------------------


def _steady_load(
    stub, rate: float, threads: int, stop: threading.Event, record: Callable[[float, str | None], None]
) -> None:
    """Each of `threads` workers calls every threads/rate seconds until `stop`; `record(end, served_by or None)`."""
    interval = threads / rate

    def worker(offset: float) -> None:
        next_at = time.monotonic() + offset
        while not stop.is_set():
            try:
                who = stub.CreateUser(_request(), timeout=2).served_by
            except grpc.RpcError:
                who = None
            record(time.time(), who)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bench-load") as pool:
        for i in range(threads):
            pool.submit(worker, i * interval / threads)


def _attempts(channel: DiscoveryChannel, instance_id: str) -> int | None:
    """Attempts the picker has started on one instance (None for a native channel, or once the instance left)."""
    if not isinstance(channel, PickerChannel):
        return None
    stats = channel.stats().get(instance_id)
    return None if stats is None else stats["calls"] + stats["in_flight"]


def _one_failover(
    cluster: Cluster, registry: str, mode: str, rate: float, threads: int, before: float, after: float, victim: str
) -> dict[str, Any]:
    calls: list[tuple[float, str | None]] = []
    touches: list[float] = []  # when the picker's count of attempts on the victim last moved
    lock = threading.Lock()

    def record(end: float, who: str | None) -> None:
        with lock:
            calls.append((end, who))

    with _discovery(cluster, registry, mode) as channel:
        stop = threading.Event()
        load = threading.Thread(
            target=_steady_load,
            args=(user_pb2_grpc.UserServiceStub(channel), rate, threads, stop, record),
            name="bench-failover",
            daemon=True,
        )
        load.start()
        time.sleep(before)
        # Counted before the kill, so an attempt that fails while `kill` waits for the process is seen.
        last = _attempts(channel, victim)
        killed_at = time.time()
        killed = cluster.kill(victim)
        end = time.monotonic() + after
        while time.monotonic() < end:
            # Attempts the picker retried elsewhere leave no trace in responses; its per-instance count does.
            seen = _attempts(channel, victim)
            if seen is not None and last is not None and seen != last:
                touches.append(time.time())
            last = seen
            time.sleep(0.005)
        stop.set()
        load.join(10)
        removed = [e.at for e in channel.watcher.events if e.kind == "removed" and e.instance.id == victim]
    # The other instances are healthy, so a failed call is one that went to the victim.
    to_victim = [t for t, who in calls if t >= killed_at and who in (victim, None)]
    last_traffic = max([*to_victim, *touches], default=killed_at)
    pid = killed["pid"]
    cluster.start(victim)  # the next run kills it again
    return {
        "seconds_to_no_traffic": max(0.0, last_traffic - killed_at),
        "failed_calls": sum(1 for _, who in calls if who is None),
        "calls": len(calls),
        "calls_per_second": len(calls) / (before + after),
        "seconds_to_deregistered": removed[0] - killed_at if removed else None,
        "killed_pid": pid,
        "killed_pid_dead": not processes.is_alive(pid),  # psutil: gone, or a zombie nobody has reaped
    }


def failover(
    registry: str = "consul",
    mode: str = "picker",
    runs: int = 3,
    rate: float = 300.0,
    threads: int = 6,
    before: float = 1.0,
    after: float = 3.0,
    victim: str = "user-1",
    progress: OnStep | None = None,
) -> dict[str, Any]:
    """Steady load over three instances, kill -9 one: seconds until it gets no more attempts, and calls that failed."""
    _check(registry, mode)
    samples = []
    with small_lab() as cluster:
        for n in range(runs):
            _report(progress, n, runs, "failover")
            samples.append(_one_failover(cluster, registry, mode, rate, threads, before, after, victim))
    to_none = [s["seconds_to_no_traffic"] for s in samples]
    return {
        **_summary("failover", registry, mode, runs),
        "seconds_to_no_traffic": round(statistics.median(to_none), 3),
        "max_seconds_to_no_traffic": round(max(to_none), 3),
        "failed_calls": sum(s["failed_calls"] for s in samples),
        "calls": sum(s["calls"] for s in samples),
        "calls_per_second": round(statistics.median(s["calls_per_second"] for s in samples), 1),
        "killed_pid": samples[-1]["killed_pid"],
        "killed_pid_dead": all(s["killed_pid_dead"] for s in samples),
        "target_seconds": TARGETS["failover"][mode],
        "samples": [{k: round(v, 3) if isinstance(v, float) else v for k, v in s.items()} for s in samples],
    }


# -- overhead --------------------------------------------------------------------------------------------


def _rates(channels: dict[str, grpc.Channel], seconds: float, slice_seconds: float = 0.2) -> dict[str, float]:
    """Sequential unary calls per second on each channel, for `seconds` each, in alternating slices.

    Alternating cancels drift in what else the machine is doing, which would favour whichever went first.
    """
    # Health checks, not CreateUser: every created user slows the next create a little, and the plain
    # channel would create three times as many users on its one instance as discovery does on each.
    stubs = {name: health_pb2_grpc.HealthStub(channel) for name, channel in channels.items()}
    request = health_pb2.HealthCheckRequest()
    for stub in stubs.values():
        for _ in range(20):  # connect and warm up before the clock starts
            stub.Check(request, timeout=5)
    calls = dict.fromkeys(stubs, 0)
    spent = dict.fromkeys(stubs, 0.0)
    while min(spent.values()) < seconds:
        for name, stub in stubs.items():
            start = time.monotonic()
            while time.monotonic() - start < slice_seconds:
                stub.Check(request, timeout=5)
                calls[name] += 1
            spent[name] += time.monotonic() - start
    return {name: calls[name] / spent[name] for name in stubs}


def overhead(
    registry: str = "consul", mode: str = "picker", runs: int = 3, seconds: float = 2.0, progress: OnStep | None = None
) -> dict[str, Any]:
    """Sequential unary calls/s (health checks) through the discovery channel against two baselines, same run.

    `ratio_vs_round_robin` compares with gRPC's own round_robin over the same fixed addresses: the cost of
    discovery. `ratio_vs_plain_channel` compares with one channel to one instance, which on two cores also
    counts the cost of spreading calls over three server processes; it is reported, not a target.
    """
    _check(registry, mode)
    samples = []
    with small_lab() as cluster, _discovery(cluster, registry, mode) as discovered:
        addresses = [s.address for s in cluster.status().services]
        plain = grpc.insecure_channel(addresses[0])
        # gRPC's round_robin over the same fixed addresses, with no discovery: it shows how much of the gap
        # to one instance comes from spreading calls over three processes rather than from discovery.
        static = grpc.insecure_channel(static_target(addresses), options=[("grpc.service_config", SERVICE_CONFIG)])
        try:
            for n in range(runs):
                _report(progress, n, runs, "overhead")
                rates = _rates({"plain": plain, "static": static, "discovery": discovered}, seconds)
                samples.append(
                    {
                        "plain_calls_per_second": rates["plain"],
                        "discovery_calls_per_second": rates["discovery"],
                        "round_robin_calls_per_second": rates["static"],
                        "ratio_vs_plain_channel": rates["discovery"] / rates["plain"],
                        "ratio_vs_round_robin": rates["discovery"] / rates["static"],
                    }
                )
        finally:
            plain.close()
            static.close()
    return {
        **_summary("overhead", registry, mode, runs),
        "ratio_vs_round_robin": round(statistics.median(s["ratio_vs_round_robin"] for s in samples), 3),
        "ratio_vs_plain_channel": round(statistics.median(s["ratio_vs_plain_channel"] for s in samples), 3),
        "discovery_calls_per_second": round(statistics.median(s["discovery_calls_per_second"] for s in samples), 1),
        "round_robin_calls_per_second": round(statistics.median(s["round_robin_calls_per_second"] for s in samples), 1),
        "plain_calls_per_second": round(statistics.median(s["plain_calls_per_second"] for s in samples), 1),
        "target_ratio_vs_round_robin": TARGETS["overhead"],
        "samples": [{k: round(v, 3) for k, v in s.items()} for s in samples],
    }


BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "propagation": propagation,
    "failover": failover,
    "overhead": overhead,
}


def _report(progress: OnStep | None, done: int, runs: int, name: str) -> None:
    if progress is not None:
        progress(done, runs, f"{name}: run {done + 1} of {runs}")


def run(
    which: str, registry: str = "consul", mode: str = "picker", runs: int = 3, progress: OnStep | None = None
) -> dict[str, Any]:
    """One benchmark by name; `progress(done, total, step)` hears each run start and the end."""
    if which not in BENCHMARKS:
        raise ValueError(f"invalid argument: benchmark: {which!r}; use one of {', '.join(BENCHMARKS)}")
    result = BENCHMARKS[which](registry=registry, mode=mode, runs=runs, progress=progress)
    if progress is not None:
        progress(runs, runs, f"{which}: done")
    return result


def describe(result: dict[str, Any]) -> str:
    head = (
        f"{result['benchmark']} through the {result['mode']} channel on {result['registry']}, {result['runs']} runs:\n"
    )
    if result["benchmark"] == "propagation":
        return head + (
            f"  listed in {result['registry']} to its first answered call: median "
            f"{result['median_seconds_listed_to_first_call']} s "
            f"(target <= {result['target_seconds_listed_to_first_call']} s)\n"
            "  new instance's process start to its first answered call: "
            f"median {result['median_seconds_start_to_first_call']} s, "
            f"max {result['max_seconds_start_to_first_call']} s "
            f"(target <= {result['target_seconds_start_to_first_call']} s), "
            f"of which start to listed: median {result['median_seconds_start_to_listed']} s"
        )
    if result["benchmark"] == "failover":
        return head + (
            f"  kill -9 under {result['calls_per_second']} calls/s: no more attempts on the killed instance after "
            f"median {result['seconds_to_no_traffic']} s, max {result['max_seconds_to_no_traffic']} s "
            f"(target <= {result['target_seconds']} s)\n"
            f"  failed calls: {result['failed_calls']} of {result['calls']}"
            f"{' (target 0)' if result['mode'] == 'picker' else ''}; "
            f"killed pid {result['killed_pid']} dead: {result['killed_pid_dead']}"
        )
    return head + (
        f"  sequential unary calls/s (health checks): {result['discovery_calls_per_second']} through discovery, "
        f"{result['round_robin_calls_per_second']} with gRPC's round_robin over the same fixed addresses, "
        f"{result['plain_calls_per_second']} on a plain channel to one instance\n"
        f"  ratio vs round_robin {result['ratio_vs_round_robin']} (target >= {result['target_ratio_vs_round_robin']}); "
        f"vs plain channel {result['ratio_vs_plain_channel']} (reported, not a target)"
    )
