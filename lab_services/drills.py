"""Failure drills: inject one fault into the running lab, time what notices and what recovers, and put everything back.

    result = run(cluster, "service-kill", check_interval="10s")
    result.timeline          # [{"t": 0.0, "event": "kill -9 user-drill"}, {"t": 4.213, "event": "Consul: check critical"}, ...]
    result.summary           # {"seconds_to_critical": 4.213, "seconds_to_removed": 4.221, "client_errors": 0, ...}
    result.plot()            # a matplotlib Figure of the timeline
    print(result.to_json())

`t` is seconds since the fault. The three service drills never touch the lab's own instances: each
registers a separate *probe* instance of the service with the check settings it is given
(`check_interval`, `check_timeout`, `ttl`, `deregister_after`), puts it under client load through a
PickerChannel together with the lab's instances, and disturbs the probe. So a learner can compare
Consul's usual 10 s interval with a tuned one on the same cluster. The server drills kill a real Consul
or etcd leader (or two etcd members), and always start them again and wait for a leader before they
return, also when something in between failed.
"""
from __future__ import annotations

import base64
import json
import random
import signal
import sys
import threading
import time
import urllib.error
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import grpc

from lab_services.consul_health import ConsulHealth
from lab_services.discovery.consul_watcher import ConsulWatcher
from lab_services.discovery.etcd_watcher import EtcdWatcher
from lab_services.discovery.instance import DiscoveryEvent
from lab_services.discovery.picker_channel import PickerChannel
from lab_services.display import Table
from lab_services.registry.spec import CheckSpec, parse_duration
from lab_services.runtime import processes
from lab_services.runtime.cluster import Cluster
from lab_services.runtime.ports import PortAllocator
from lab_services.runtime.probe import http_json
from lab_services.service import user_pb2, user_pb2_grpc


# -- the result ---------------------------------------------------------------------------------------

@dataclass
class DrillResult:
    """What a drill saw: `timeline` of {"t", "event"} in order, `summary` of named seconds and counts, `params` used."""

    drill: str
    params: dict[str, Any]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def events(self) -> list[str]:
        return [e["event"] for e in self.timeline]

    def at(self, text: str) -> float | None:
        """The time of the first event whose text contains `text`, or None."""
        return next((e["t"] for e in self.timeline if text in e["event"]), None)

    def table(self) -> Table:
        return Table(self.timeline, ["t", "event"])

    def to_json(self) -> str:
        return json.dumps({"drill": self.drill, "params": self.params, "timeline": self.timeline, "summary": self.summary})

    def plot(self, ax=None):
        """Each event as a labelled dot on a line of seconds since the fault. Returns the Figure."""
        import matplotlib.pyplot as plt  # only lessons that plot pay for matplotlib

        if ax is None:
            fig, ax = plt.subplots(figsize=(9, 0.32 * max(4, len(self.timeline)) + 1))
        else:
            fig = ax.figure
        rows = list(reversed(self.timeline))
        for y, event in enumerate(rows):
            recovery = event["t"] >= (self.summary.get("recovery_started") or float("inf"))
            ax.scatter(event["t"], y, color="#1a7f37" if recovery else "#cf222e", s=40, zorder=3)
            ax.annotate(f"  {event['event']} ({event['t']:.2f} s)", (event["t"], y), va="center", fontsize=8)
        ax.axvline(0, color="#57606a", linestyle="--")
        ax.set_yticks([])
        ax.set_ylim(-1, len(rows))
        right = max((e["t"] for e in self.timeline), default=1.0)
        ax.set_xlim(min(-0.5, -0.05 * right), right * 1.6 + 1)
        ax.set_xlabel("seconds since the fault")
        ax.set_title(f"drill {self.drill}")
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        return fig

    def _repr_html_(self) -> str:
        return f"<p><b>drill {self.drill}</b> {self.params}</p>" + self.table()._repr_html_()


class Stopwatch:
    """Records events from any thread as seconds since the fault; events before the fault are not kept."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.wall0: float | None = None
        self.entries: list[tuple[float, int, str]] = []
        self.firsts: dict[str, float] = {}
        self._lock = threading.Lock()

    def fault(self, text: str) -> None:
        with self._lock:
            self.t0, self.wall0 = time.monotonic(), time.time()
            self.entries.append((0.0, 0, text))

    def mark(self, text: str, at: float | None = None, key: str | None = None, wall: float | None = None) -> float | None:
        """Record `text` now (or at monotonic `at`, or wall-clock `wall`); with `key`, only its first occurrence."""
        with self._lock:
            if self.t0 is None:
                return None
            if key is not None and key in self.firsts:
                return self.firsts[key]
            if wall is not None:
                t = wall - self.wall0
            else:
                t = (time.monotonic() if at is None else at) - self.t0
            t = max(t, 0.0)
            self.entries.append((t, len(self.entries), text))
            if key is not None:
                self.firsts[key] = t
            return t

    def since(self) -> float:
        return time.monotonic() - (self.t0 or time.monotonic())

    def first(self, key: str) -> float | None:
        """Seconds since the fault of the first event recorded under `key`, rounded as the timeline is."""
        return round(self.firsts[key], 3) if key in self.firsts else None

    def timeline(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"t": round(t, 3), "event": text} for t, _, text in sorted(self.entries)]


def _wait(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy (connection errors count as not yet); TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, urllib.error.URLError) as err:
            last = f" (last error: {err})"
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}{last}")
        time.sleep(poll)


def _processes(status: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in status["processes"] if p["kind"] == kind}


def _host(status: dict[str, Any]) -> str:
    """Where the lab's own clients (the probe) listen; the servers each say where they listen (`_address`)."""
    return status["config"]["host"]


def _address(process: dict[str, Any], port: str) -> str:
    """host:port of one server: on the compose runtime every server has its own loopback address."""
    return f"{process['host']}:{process['ports'][port]}"


# -- the probe instance and client load ---------------------------------------------------------------

class Probe:
    """A separate instance of the lab's service, registered in Consul only, with the drill's check settings."""

    def __init__(self, status: dict[str, Any], check_interval: str, check_timeout: str, ttl: str | None,
                 deregister_after: str | None):
        self.service = status["config"]["service_name"]
        self.id = f"{self.service}-drill-{uuid.uuid4().hex[:4]}"
        self.consul_http = status["consul"]["http"][0]
        self.base = Path(status["state_dir"])
        ports = PortAllocator(_host(status))
        self.port, self.http_port = ports.free(), ports.free()
        checks = ["--check", "grpc"] + (["--check", "ttl", "--ttl", ttl] if ttl else [])
        self.argv = [
            sys.executable, "-m", "lab_services.service", "--host", _host(status), "--port", str(self.port),
            "--http-port", str(self.http_port), "--name", self.service, "--id", self.id, "--tags", "drill",
            "--meta", "version=drill", "--registry", "consul", "--consul", self.consul_http,
            "--check-interval", check_interval, "--check-timeout", check_timeout, "--grace", "1", *checks,
        ] + (["--deregister-after", deregister_after] if deregister_after else [])
        self.child: processes.Child | None = None

    def start(self) -> None:
        log = self.base / "cluster" / "logs" / f"{self.id}.log"
        self.child = processes.spawn(self.id, self.argv, log_path=log, base=self.base)

    def send(self, sig: signal.Signals) -> None:
        self.child.send(sig)

    def kill(self) -> None:
        self.child.kill()

    def stop(self) -> None:
        """Graceful: SIGTERM (it deregisters), continuing it first if it is paused."""
        if self.child is not None:
            self.child.stop(timeout=10)


class Load:
    """One client thread calling CreateUser through a PickerChannel about `rate` times a second, recording every outcome."""

    def __init__(self, channel: PickerChannel, call_timeout: float, rate: float = 40.0):
        self.stub = user_pb2_grpc.UserServiceStub(channel)
        self.call_timeout = call_timeout
        self.pause = 1.0 / rate
        self.results: list[tuple[float, float, str, str]] = []  # (monotonic start, end, code name, served_by)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-load", daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            request = user_pb2.CreateUserRequest(name="Drill", email=f"drill-{uuid.uuid4().hex[:10]}@example.com")
            started = time.monotonic()
            try:
                served_by = self.stub.CreateUser(request, timeout=self.call_timeout).served_by
                self.results.append((started, time.monotonic(), "OK", served_by))
            except grpc.RpcError as err:
                self.results.append((started, time.monotonic(), err.code().name, ""))
            except Exception as err:  # no instance at all, or a closed channel while stopping
                self.results.append((started, time.monotonic(), type(err).__name__, ""))
            self._stop.wait(self.pause)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.call_timeout + 2)

    def errors(self, since: float) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, at, code, _ in list(self.results):
            if at >= since and code != "OK":
                counts[code] = counts.get(code, 0) + 1
        return counts

    def calls(self, since: float) -> int:
        return sum(1 for _, at, _, _ in list(self.results) if at >= since)

    def first_served_by(self, instance_id: str, since: float) -> float | None:
        """When the first call that started at or after `since` was answered by `instance_id` (a call held by a
        paused instance and answered once it resumed does not count: it was routed there before)."""
        return next((end for start, end, _, who in list(self.results) if start >= since and who == instance_id), None)


def _service_drill(cluster: Cluster, name: str, fault: str, check_interval: str, check_timeout: str, ttl: str | None,
                   deregister_after: str | None, call_timeout: float, recover: bool, wait_deregister: bool,
                   policy: str, settle: float | None) -> DrillResult:
    """The three service drills: probe up and under load, one fault, then everything that follows, timed.

    The fault comes `settle` seconds after the probe first served a call; by default a random moment within one
    check interval, because the probe passes on a check and a fault right after it would always wait a whole
    interval: repeated runs sample every phase, as real crashes do.
    """
    params = {"check_interval": check_interval, "check_timeout": check_timeout, "ttl": ttl,
              "deregister_after": deregister_after, "call_timeout": call_timeout, "recover": recover}
    # Refuse what Consul would refuse (an interval under 1 s, DeregisterCriticalServiceAfter under 1 m)
    # here, naming the field, instead of as a probe that never registers.
    CheckSpec("grpc", interval=check_interval, timeout=check_timeout, deregister_critical_after=deregister_after).validate("grpc check")
    if ttl:
        CheckSpec("ttl", ttl=ttl).validate("ttl check")
    if wait_deregister and not deregister_after:
        raise ValueError("invalid argument: wait_deregister: needs deregister_after, e.g. '1m'")
    interval, timeout_s = parse_duration(check_interval), parse_duration(check_timeout)
    ttl_s = parse_duration(ttl) if ttl else 0.0
    # Long enough for the slowest legitimate case: a check's first run is staggered by up to one interval.
    patience = 3 * interval + timeout_s + ttl_s + 15
    status = cluster.status()
    probe = Probe(status, check_interval, check_timeout, ttl, deregister_after)
    watch = Stopwatch()
    health = ConsulHealth(probe.consul_http)
    watcher = ConsulWatcher(probe.service, status["consul"]["http"]).start()
    channel = load = None
    try:
        probe.start()
        health.wait_listed(probe.service, probe.id, listed=True, timeout=patience)
        watcher.wait_for(lambda found: any(i.id == probe.id for i in found), timeout=patience)

        def on_event(event: DiscoveryEvent) -> None:
            if event.instance.id == probe.id:
                verb = {"removed": "removed from", "added": "added to"}.get(event.kind, f"{event.kind} in")
                watch.mark(f"watcher: {probe.id} {verb} the passing set", wall=event.at, key=f"watch-{event.kind}")

        watcher.subscribe(on_event)
        channel = PickerChannel(watcher, policy=policy)
        load = Load(channel, call_timeout).start()
        before = time.monotonic()
        _wait(lambda: load.first_served_by(probe.id, before), 10, f"a call served by {probe.id}")
        time.sleep(random.uniform(0, interval) if settle is None else settle)

        stop_sampling, recovering = threading.Event(), threading.Event()

        def sample() -> None:
            seen_in_picker = True
            while not stop_sampling.wait(0.02):
                stats = channel.stats().get(probe.id)
                if stats is None and seen_in_picker:
                    watch.mark(f"client: picker dropped {probe.id} (no more calls routed to it)", key="dropped")
                    seen_in_picker = False
                elif stats is not None:
                    if stats["failures"] and "probe-failed" not in watch.firsts:
                        watch.mark(f"client: first failed call on {probe.id}", key="probe-failed")
                    if stats["ejected"]:
                        watch.mark(f"client: picker ejected {probe.id} after UNAVAILABLE (passive check)", key="ejected")
                try:
                    checks = health.statuses(probe.id)
                except Exception:  # Consul answering slowly must not end the sampling
                    continue
                # A restarted instance's checks start critical; that is not the fault being timed.
                if "critical" in checks.values() and not recovering.is_set():
                    watch.mark("Consul: check critical", key="critical")

        sampler = threading.Thread(target=sample, name="drill-sampler", daemon=True)
        failures_before = channel.stats().get(probe.id, {}).get("failures", 0)
        if failures_before:
            raise RuntimeError(f"{probe.id} failed calls before the fault; see {probe.child.log_path}")
        sampler.start()

        exited = threading.Event()
        if fault == "kill":
            watch.fault(f"kill -9 {probe.id}")
            probe.kill()
            exited.set()
        elif fault == "term":
            watch.fault(f"SIGTERM {probe.id} (graceful shutdown)")
            probe.send(signal.SIGTERM)

            def wait_exit() -> None:
                probe.child.popen.wait(30)
                watch.mark(f"{probe.id} exited (code {probe.child.popen.returncode})", key="exited")
                exited.set()

            threading.Thread(target=wait_exit, daemon=True).start()
        else:
            watch.fault(f"SIGSTOP {probe.id} (hung, still listening)")
            probe.send(signal.SIGSTOP)
        fault_at = watch.t0

        if fault == "term":
            health.wait_gone(probe.id, timeout=patience)
            watch.mark("Consul: deregistered by the instance itself", key="gone")
        else:
            _wait(lambda: "critical" in health.statuses(probe.id).values(), patience, f"a critical check of {probe.id}")
            watch.mark("Consul: check critical", key="critical")
        health.wait_listed(probe.service, probe.id, listed=False, timeout=patience)
        _wait(lambda: "dropped" in watch.firsts, 10, "the picker to drop the probe")
        if wait_deregister and fault != "term":
            health.wait_gone(probe.id, timeout=parse_duration(deregister_after) + 90)
            watch.mark("Consul: reaped the critical instance (DeregisterCriticalServiceAfter)", key="reaped")
        if fault == "term":
            exited.wait(15)
        summary: dict[str, Any] = {
            "seconds_to_critical": watch.first("critical"),
            "seconds_to_removed": watch.first("watch-removed"),
            "seconds_to_client_stopped": watch.first("dropped"),
            "seconds_to_first_client_failure": watch.first("probe-failed"),
        }
        if recover:
            recovering.set()
            summary["recovery_started"] = round(watch.since(), 3)
            if fault == "pause":
                probe.send(signal.SIGCONT)
                watch.mark(f"SIGCONT {probe.id} (resumed)")
            else:
                probe.start()
                watch.mark(f"{probe.id} started again")
            resumed = time.monotonic()
            # The watcher's "added" event marks the moment; waiting on the health API too covers a missed event.
            health.wait_listed(probe.service, probe.id, listed=True, timeout=patience)
            _wait(lambda: "watch-added" in watch.firsts, 10, f"the watcher to see {probe.id} passing again")
            served = _wait(lambda: load.first_served_by(probe.id, resumed), 10, f"calls to reach {probe.id} again")
            watch.mark(f"client: calls served by {probe.id} again", at=served, key="served-again")
            summary["seconds_to_recovered"] = round(watch.first("served-again") - summary["recovery_started"], 3)
        stop_sampling.set()
        sampler.join(2)
        summary.update(client_calls=load.calls(fault_at), client_errors=sum(load.errors(fault_at).values()),
                       client_errors_by_code=load.errors(fault_at), retried_elsewhere=channel.retried)
        return DrillResult(name, params, watch.timeline(), summary)
    finally:
        if load is not None:
            load.stop()
        if channel is not None:
            channel.close()
        watcher.stop()
        probe.stop()
        # A killed probe that was not started again stays registered (critical) until Consul reaps it, if ever.
        try:
            if health.registered(probe.id):
                health.client.agent.service.deregister(probe.id)
        finally:
            health.close()


def service_kill(cluster: Cluster, check_interval: str = "1s", check_timeout: str = "1s", ttl: str | None = None,
                 deregister_after: str | None = None, call_timeout: float = 1.0, recover: bool = True,
                 wait_deregister: bool = False, policy: str = "round_robin", settle: float | None = None) -> DrillResult:
    """kill -9 the probe under load: Consul's check goes critical, the watcher drops it, clients stop calling it."""
    return _service_drill(cluster, "service-kill", "kill", check_interval, check_timeout, ttl, deregister_after,
                          call_timeout, recover, wait_deregister, policy, settle)


def service_term(cluster: Cluster, check_interval: str = "1s", check_timeout: str = "1s", ttl: str | None = None,
                 deregister_after: str | None = None, call_timeout: float = 1.0, recover: bool = True,
                 policy: str = "round_robin", settle: float | None = None) -> DrillResult:
    """SIGTERM the probe: it deregisters before it stops serving, so no client call fails."""
    return _service_drill(cluster, "service-term", "term", check_interval, check_timeout, ttl, deregister_after,
                          call_timeout, recover, False, policy, settle)


def service_pause(cluster: Cluster, check_interval: str = "1s", check_timeout: str = "1s", ttl: str | None = None,
                  deregister_after: str | None = None, call_timeout: float = 1.0, recover: bool = True,
                  policy: str = "round_robin", settle: float | None = None) -> DrillResult:
    """SIGSTOP the probe: the port still accepts connections, so only timeouts notice; then SIGCONT."""
    return _service_drill(cluster, "service-pause", "pause", check_interval, check_timeout, ttl, deregister_after,
                          call_timeout, recover, False, policy, settle)


# -- server drills ------------------------------------------------------------------------------------

def _consul_leader_name(status: dict[str, Any], asked: list[str]) -> str | None:
    """The leading Consul server as the first of `asked` that answers sees it (None while there is none)."""
    servers = _processes(status, "consul")
    by_address = {_address(p, "server"): name for name, p in servers.items()}
    for name in asked:
        try:
            address = http_json(f"http://{_address(servers[name], 'http')}/v1/status/leader", timeout=1)
        except (OSError, ValueError):
            continue
        return by_address.get(address) if address else None
    return None


def _kill_leader(cluster: Cluster, watch: Stopwatch, leader: str, what: str, leader_name: Callable[[], str | None],
                 patience: float) -> str:
    """kill -9 the leader, as a crash would, and return the survivor the others elected (timed on `watch`)."""
    watch.fault(f"kill -9 {leader} (the {what} leader)")
    cluster.kill(leader)
    new = _wait(lambda: (name := leader_name()) not in (None, leader) and name, patience, f"a new {what} leader")
    watch.mark(f"new leader elected: {new}", key="elected")
    return new


def consul_leader(cluster: Cluster, patience: float = 30.0) -> DrillResult:
    """kill -9 the Consul leader: a new one is elected, registrations and a KV key survive; then restart it."""
    status = cluster.status()
    leader = status["consul"]["leader"]
    servers = _processes(status, "consul")
    if len(servers) < 3 or leader is None:
        raise RuntimeError(f"the consul-leader drill needs 3 Consul servers with a leader; the lab has {len(servers)} "
                           f"(leader {leader}); start it with consul_servers=3")
    survivors = [n for n in servers if n != leader]
    http = {n: _address(p, "http") for n, p in servers.items()}
    service = status["config"]["service_name"]
    key, token = "drills/consul-leader", uuid.uuid4().hex
    ask = ConsulHealth(http[survivors[0]])
    ask.client.kv.put(key, token)
    registered = ask.instances(service)
    watch = Stopwatch()
    watcher = ConsulWatcher(service, [http[n] for n in survivors]).start()
    watcher.wait_ready(10)
    watcher.subscribe(lambda e: watch.mark(f"watcher: {e.instance.id} {e.kind} in the passing set", wall=e.at))
    killed = True  # from here on, `finally` starts the leader again (a no-op if it still runs)
    try:
        new = _kill_leader(cluster, watch, leader, "Consul", lambda: _consul_leader_name(status, survivors), patience)
        value = _wait(lambda: ask.client.kv.get(key)[1], patience, f"KV {key} to be readable")
        survived_kv = value["Value"].decode() == token
        watch.mark(f"KV {key} read back {'intact' if survived_kv else 'CHANGED'}", key="kv")
        still = ask.instances(service)
        watch.mark(f"catalog still lists {len(still)} of {len(registered)} registrations", key="catalog")
        ask.client.kv.put(key, "written after the failover")
        watch.mark("KV write accepted by the new leader", key="write")
        watch.mark(f"start {leader} again")
        summary_recovery = round(watch.since(), 3)
        cluster.start(leader)
        killed = False
        _wait(lambda: _consul_leader_name(status, [leader]), patience, f"{leader} to see a leader")
        watch.mark(f"{leader} rejoined and sees leader {_consul_leader_name(status, [leader])}", key="rejoined")
        _wait(lambda: set(ask.instances(service, passing=True)) >= set(registered), patience, "every registration passing")
        watch.mark("every registration passing again", key="passing")
        return DrillResult("consul-leader", {"patience": patience}, watch.timeline(), {
            "old_leader": leader, "new_leader": new, "seconds_to_new_leader": watch.first("elected"),
            "kv_survived": survived_kv, "registrations_before": len(registered), "registrations_after": len(still),
            "recovery_started": summary_recovery, "seconds_to_all_passing": watch.first("passing")})
    finally:
        if killed:
            cluster.start(leader)
        watcher.stop()
        try:
            ask.client.kv.delete(key)
        finally:
            ask.close()


def _etcd(endpoint: str, path: str, body: dict[str, Any], timeout: float = 1.0) -> dict[str, Any]:
    """One call to etcd's JSON gateway on one member (so a drill chooses exactly which member it asks)."""
    return http_json(f"http://{endpoint}/v3/{path}", data=body, timeout=timeout)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _etcd_leader_name(status: dict[str, Any], asked: list[str]) -> str | None:
    members = _processes(status, "etcd")
    ids: dict[str, str] = {}
    leader_id = None
    for name in asked:
        try:
            answer = _etcd(_address(members[name], "client"), "maintenance/status", {})
        except (OSError, ValueError):
            continue
        ids[answer["header"]["member_id"]] = name
        leader_id = answer.get("leader") or leader_id
    # A member that still names the dead leader (or one we did not ask) does not count as an answer yet.
    return ids.get(leader_id) if leader_id else None


def _put(endpoint: str, key: str, value: str, lease: str | None = None) -> dict[str, Any]:
    return _etcd(endpoint, "kv/put", {"key": _b64(key), "value": _b64(value), **({"lease": lease} if lease else {})})


def _drill_instance(service: str, instance_id: str, port: int) -> str:
    return json.dumps({"id": instance_id, "name": service, "address": f"127.0.0.1:{port}", "host": "127.0.0.1",
                       "port": port, "tags": ["drill"], "meta": {}})


def etcd_leader(cluster: Cluster, lease_ttl: int = 5, patience: float = 30.0) -> DrillResult:
    """kill -9 the etcd leader: a new one is elected, a lease kept alive survives, a watch resumes; then restart it."""
    status = cluster.status()
    leader = status["etcd"]["leader"]
    members = _processes(status, "etcd")
    if len(members) < 3 or leader is None:
        raise RuntimeError(f"the etcd-leader drill needs 3 etcd members with a leader; the lab has {len(members)}; "
                           "start it with etcd_members=3")
    endpoint = {n: _address(p, "client") for n, p in members.items()}
    survivors = [n for n in members if n != leader]
    ask = endpoint[survivors[0]]
    service = "drill-etcd"
    lease = _etcd(ask, "lease/grant", {"TTL": lease_ttl})["ID"]
    _put(ask, f"/services/{service}/before", _drill_instance(service, "before", 1), lease)
    watch = Stopwatch()
    # The lab's own watcher, over every member, so it has to move to a survivor when its member dies.
    watcher = EtcdWatcher(service, [endpoint[n] for n in members]).start()
    watcher.wait_ready(10)
    watcher.subscribe(lambda e: watch.mark(f"watcher: saw key {e.instance.id!r} {e.kind} (the watch carried on)", wall=e.at,
                                           key=f"watch-{e.instance.id}"))
    stop_keepalive = threading.Event()
    keepalive_errors = []

    def keepalive() -> None:
        # A client keeps its lease alive every TTL/3, against whichever member answers.
        while not stop_keepalive.wait(lease_ttl / 3):
            for name in [leader, *survivors]:
                try:
                    answer = _etcd(endpoint[name], "lease/keepalive", {"ID": lease})
                except (OSError, ValueError) as err:
                    keepalive_errors.append(str(err))
                    continue
                if "TTL" in answer.get("result", {}):
                    if watch.t0 is not None:
                        watch.mark(f"lease kept alive after the failover (via {name})", key="keepalive")
                    break

    threading.Thread(target=keepalive, name="drill-keepalive", daemon=True).start()
    killed = True  # from here on, `finally` starts the leader again (a no-op if it still runs)
    try:
        new = _kill_leader(cluster, watch, leader, "etcd", lambda: _etcd_leader_name(status, survivors), patience)
        _wait(lambda: _put(endpoint[new], f"/services/{service}/after", _drill_instance(service, "after", 2), lease), patience,
              "a write to the new leader")
        watch.mark("write accepted by the new leader", key="write")
        _wait(lambda: "watch-after" in watch.firsts, patience, "the watcher to deliver the write made after the failover")
        _wait(lambda: "keepalive" in watch.firsts, patience, "a lease keepalive after the failover")
        lab_keys = _etcd(endpoint[new], "kv/range", {"key": _b64(f"/services/{status['config']['service_name']}/"),
                                                     "range_end": _b64(f"/services/{status['config']['service_name']}0"),
                                                     "count_only": True}).get("count", "0")
        watch.mark(f"the lab's {lab_keys} registrations are still there (their leases survived)", key="registrations")
        recovery = round(watch.since(), 3)
        watch.mark(f"start {leader} again")
        cluster.start(leader)
        killed = False
        watch.mark(f"{leader} healthy again", key="healthy")
        _wait(lambda: _etcd_leader_name(status, list(members)) not in (None,), patience, "one leader for all members")
        watch.mark(f"all {len(members)} members agree on leader {_etcd_leader_name(status, list(members))}", key="agreed")
        return DrillResult("etcd-leader", {"lease_ttl": lease_ttl, "patience": patience}, watch.timeline(), {
            "old_leader": leader, "new_leader": new, "seconds_to_new_leader": watch.first("elected"),
            "seconds_to_write": watch.first("write"), "seconds_to_watch_resumed": watch.first("watch-after"),
            "seconds_to_keepalive": watch.first("keepalive"), "lab_registrations": int(lab_keys),
            "recovery_started": recovery, "seconds_to_healthy": watch.first("healthy")})
    finally:
        stop_keepalive.set()
        if killed:
            cluster.start(leader)
        watcher.stop()
        for name in survivors:
            try:
                _etcd(endpoint[name], "lease/revoke", {"ID": lease}, timeout=3)
                break
            except (OSError, ValueError):
                continue


def etcd_quorum(cluster: Cluster, down_for: float = 2.0, patience: float = 30.0) -> DrillResult:
    """kill -9 two of three etcd members: writes fail without a quorum; start one again and they succeed."""
    status = cluster.status()
    members = _processes(status, "etcd")
    leader = status["etcd"]["leader"]
    if len(members) < 3:
        raise RuntimeError(f"the etcd-quorum drill needs 3 etcd members; the lab has {len(members)}; start it with etcd_members=3")
    endpoint = {n: _address(p, "client") for n, p in members.items()}
    # The leader stays, so it is the leader that finds itself alone and has to step down.
    survivor = leader or next(iter(members))
    victims = [n for n in members if n != survivor][:2]
    key = "/drills/etcd-quorum"
    _put(endpoint[survivor], key, "before")
    watch = Stopwatch()
    down = list(victims)

    def write(value: str) -> bool:
        try:
            _put(endpoint[survivor], key, value)
            return True
        except (OSError, ValueError):
            return False

    try:
        watch.fault(f"kill -9 {' and '.join(victims)} (2 of {len(members)} members)")
        for name in victims:
            cluster.kill(name)
        _wait(lambda: not write("without quorum"), patience, "a write to fail without a quorum", poll=0.2)
        watch.mark(f"write to {survivor} failed: no quorum (1 of {len(members)} members)", key="write-failed")
        failed_at = time.monotonic()
        attempts = 1
        while time.monotonic() - failed_at < down_for:
            attempts += 1
            if write("still without quorum"):
                raise RuntimeError(f"a write succeeded with {len(victims)} of {len(members)} etcd members down")
        watch.mark(f"{attempts} writes in {down_for:g} s, every one refused", key="refused")
        recovery = round(watch.since(), 3)
        watch.mark(f"start {victims[0]} again")
        cluster.start(victims[0])
        down.remove(victims[0])
        watch.mark(f"{victims[0]} healthy: quorum restored (2 of {len(members)})", key="quorum")
        _wait(lambda: write("after quorum"), patience, "a write to succeed again", poll=0.1)
        watch.mark(f"write to {survivor} succeeded again", key="write-ok")
        cluster.start(victims[1])
        down.remove(victims[1])
        watch.mark(f"{victims[1]} healthy: all {len(members)} members back", key="all-back")
        return DrillResult("etcd-quorum", {"down_for": down_for, "patience": patience}, watch.timeline(), {
            "killed": victims, "survivor": survivor, "refused_writes": attempts, "recovery_started": recovery,
            "seconds_to_quorum": watch.first("quorum"), "seconds_to_write_ok": watch.first("write-ok"),
            "seconds_to_all_back": watch.first("all-back")})
    finally:
        for name in down:
            cluster.start(name)
        try:
            _etcd(endpoint[survivor], "kv/deleterange", {"key": _b64(key)}, timeout=3)
        except (OSError, ValueError):
            pass


# -- the registry -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Drill:
    name: str
    description: str
    run: Callable[..., DrillResult]


DRILLS: dict[str, Drill] = {d.name: d for d in (
    Drill("service-kill", "kill -9 an instance under load: check critical, removed from the passing set, clients move, restart", service_kill),
    Drill("service-term", "SIGTERM an instance under load: it deregisters first, so clients see no errors", service_term),
    Drill("service-pause", "SIGSTOP an instance under load: only timeouts notice until its check times out; then SIGCONT", service_pause),
    Drill("consul-leader", "kill -9 the Consul leader: time to a new leader, registrations and KV survive, restart it", consul_leader),
    Drill("etcd-leader", "kill -9 the etcd leader: new leader, leases and watches carry on, restart it", etcd_leader),
    Drill("etcd-quorum", "kill 2 of 3 etcd members: writes fail without quorum, succeed once one is back", etcd_quorum),
)}


def run(cluster: Cluster, name: str, **params: Any) -> DrillResult:
    """Run the drill `name` (see DRILLS) against `cluster` with its parameters, e.g. check_interval="10s"."""
    if name not in DRILLS:
        raise ValueError(f"invalid argument: drill: {name!r}; use one of {', '.join(DRILLS)}")
    return DRILLS[name].run(cluster, **params)


def describe() -> Table:
    """The drills and what each does, for a notebook."""
    return Table([{"drill": d.name, "what it does": d.description} for d in DRILLS.values()], ["drill", "what it does"])


def removal_comparison(cluster: Cluster, settings: dict[str, dict[str, Any]], repeats: int = 1,
                       drill: str = "service-kill") -> Table:
    """Run a service drill (without recovery) `repeats` times per named check setting and tabulate the removal times.

        removal_comparison(cluster, {"default 10s": {"check_interval": "10s"}, "tuned 3s": {"check_interval": "3s"}})

    With drill="service-pause" the probe hangs instead of dying, so the check has to time out as well.
    """
    if drill not in ("service-kill", "service-pause"):
        raise ValueError(f"invalid argument: drill: {drill!r}; compare with service-kill or service-pause")
    rows = []
    for label, params in settings.items():
        removed = []
        for _ in range(repeats):
            result = DRILLS[drill].run(cluster, recover=False, **params)
            removed.append(result.summary["seconds_to_removed"])
        rows.append({"setting": label, "drill": drill, **{k: v for k, v in params.items()}, "runs": repeats,
                     "mean_seconds_to_removed": round(sum(removed) / len(removed), 2),
                     "max_seconds_to_removed": round(max(removed), 2), "samples": [round(r, 2) for r in removed]})
    columns = ["setting", "drill", *sorted({k for p in settings.values() for k in p}), "runs", "mean_seconds_to_removed",
               "max_seconds_to_removed", "samples"]
    return Table(rows, columns)
