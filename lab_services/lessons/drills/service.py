"""The three service drills: a probe instance under client load gets one fault (kill -9, SIGTERM or SIGSTOP), timed.

The drills never touch the lab's own instances: each registers a separate *probe* instance of the service with
the check settings it is given, puts it under client load through a PickerChannel together with the lab's
instances, and disturbs the probe. So a learner can compare Consul's usual 10 s interval with a tuned one on
the same cluster.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from lab_services.core.durations import parse_duration
from lab_services.core.progress import OnStep
from lab_services.core.wait import WaitTimeout, wait_for
from lab_services.discovery.consul_watcher import ConsulWatcher
from lab_services.discovery.instance import DiscoveryEvent
from lab_services.discovery.picker_channel import PickerChannel
from lab_services.lessons.drills.probe import Load, Probe
from lab_services.lessons.drills.result import DrillResult, Stopwatch
from lab_services.registry.consul_health import ConsulHealth
from lab_services.registry.spec import CheckSpec
from lab_services.runtime.cluster import Cluster

FAULTS = {"kill": "service-kill", "term": "service-term", "pause": "service-pause"}


@dataclass(frozen=True)
class ServiceDrillParams:
    """A service drill's knobs: the probe's check settings, the client's call timeout, and what happens after the fault.

    `settle` is how long after the probe first served a call the fault comes; by default a random moment within one
    check interval, because the probe passes on a check and a fault right after it would always wait a whole
    interval: repeated runs sample every phase, as real crashes do.
    """

    check_interval: str = "1s"
    check_timeout: str = "1s"
    ttl: str | None = None
    deregister_after: str | None = None
    call_timeout: float = 1.0
    recover: bool = True
    wait_deregister: bool = False
    policy: str = "round_robin"
    settle: float | None = None

    def validate(self) -> ServiceDrillParams:
        """Refuse what Consul would refuse (e.g. a zero or unparseable interval) here, naming the field, instead of as
        a probe that never registers; an interval under 1 s only warns, as Consul raises it to 1 s."""
        CheckSpec(
            "grpc",
            interval=self.check_interval,
            timeout=self.check_timeout,
            deregister_critical_after=self.deregister_after,
        ).validate("grpc check")
        if self.ttl:
            CheckSpec("ttl", ttl=self.ttl).validate("ttl check")
        if self.wait_deregister and not self.deregister_after:
            raise ValueError("invalid argument: wait_deregister: needs deregister_after, e.g. '1m'")
        return self

    def reported(self) -> dict[str, Any]:
        """The parameters a DrillResult reports (the ones that change what is measured)."""
        shown = ("check_interval", "check_timeout", "ttl", "deregister_after", "call_timeout", "recover")
        return {k: v for k, v in asdict(self).items() if k in shown}

    def patience(self) -> float:
        """Long enough for the slowest legitimate case: a check's first run is staggered by up to one interval."""
        ttl = parse_duration(self.ttl) if self.ttl else 0.0
        return 3 * parse_duration(self.check_interval) + parse_duration(self.check_timeout) + ttl + 15


class ServiceDrill:
    """One run of a service drill; `run()` goes through its phases and always cleans up the probe."""

    def __init__(self, cluster: Cluster, fault: str, params: ServiceDrillParams, progress: OnStep | None = None):
        if fault not in FAULTS:
            raise ValueError(f"invalid argument: fault: {fault!r}; use one of {', '.join(FAULTS)}")
        self.cluster, self.fault, self.params = cluster, fault, params.validate()
        self.patience = params.patience()
        status = cluster.status()
        self.probe = Probe(cluster, params.check_interval, params.check_timeout, params.ttl, params.deregister_after)
        self.watch = Stopwatch()
        self.health = ConsulHealth(self.probe.consul_http)
        self.watcher = ConsulWatcher(self.probe.service, status.consul.http)
        self.channel: PickerChannel | None = None
        self.load: Load | None = None
        self.stop_sampling, self.recovering, self.exited = threading.Event(), threading.Event(), threading.Event()
        self.first_critical: list[str] = []  # which of the probe's checks had turned critical when Consul first said so
        self.progress = progress
        self.steps = 4 if params.recover else 3

    def _step(self, done: int, what: str) -> None:
        if self.progress is not None:
            self.progress(done, self.steps, f"{FAULTS[self.fault]}: {what}")

    def run(self) -> DrillResult:
        self.watcher.start()
        try:
            self._step(0, "starting the probe under load")
            self._probe_under_load()
            sampler = threading.Thread(target=self._sample, name="drill-sampler", daemon=True)
            sampler.start()
            self._step(1, "fault injected; waiting for Consul and the client to notice")
            self._inject()
            fault_at = self.watch.t0
            summary = self._noticed()
            if self.params.recover:
                self._step(2, "noticed; starting the probe again")
                summary.update(self._recover())
            self._step(self.steps, "done")
            self.stop_sampling.set()
            sampler.join(2)
            summary.update(
                client_calls=self.load.calls(fault_at),
                client_errors=sum(self.load.errors(fault_at).values()),
                client_errors_by_code=self.load.errors(fault_at),
                retried_elsewhere=self.channel.retried,
            )
            return DrillResult(FAULTS[self.fault], self.params.reported(), self.watch.timeline(), summary)
        finally:
            self._clean_up()

    def _probe_under_load(self) -> None:
        """Start the probe, wait until Consul and the watcher list it and it served a call, then let it settle."""
        probe = self.probe
        probe.start()
        self._wait_probe_passing()
        self.watcher.wait_for(lambda found: any(i.id == probe.id for i in found), timeout=self.patience)
        self.watcher.subscribe(self._on_event)
        self.channel = PickerChannel(self.watcher, policy=self.params.policy)
        self.load = Load(self.channel, self.params.call_timeout).start()
        before = time.monotonic()
        wait_for(lambda: self.load.first_served_by(probe.id, before), 10, f"a call served by {probe.id}")
        settle = self.params.settle
        time.sleep(random.uniform(0, parse_duration(self.params.check_interval)) if settle is None else settle)
        if self.channel.stats().get(probe.id, {}).get("failures", 0):
            raise RuntimeError(f"{probe.id} failed calls before the fault; see {probe.child.log_path}")

    def _on_event(self, event: DiscoveryEvent) -> None:
        if event.instance.id == self.probe.id:
            verb = {"removed": "removed from", "added": "added to"}.get(event.kind, f"{event.kind} in")
            self.watch.mark(
                f"watcher: {self.probe.id} {verb} the passing set", wall=event.at, key=f"watch-{event.kind}"
            )

    def _sample(self) -> None:
        """Every 20 ms: what the client's picker and Consul's checks say about the probe, first occurrences timed."""
        probe_id, watch = self.probe.id, self.watch
        seen_in_picker = True
        while not self.stop_sampling.wait(0.02):
            stats = self.channel.stats().get(probe_id)
            if stats is None and seen_in_picker:
                watch.mark(f"client: picker dropped {probe_id} (no more calls routed to it)", key="dropped")
                seen_in_picker = False
            elif stats is not None:
                if stats["failures"] and "probe-failed" not in watch.firsts:
                    watch.mark(f"client: first failed call on {probe_id}", key="probe-failed")
                if stats["ejected"]:
                    watch.mark(f"client: picker ejected {probe_id} after UNAVAILABLE (passive check)", key="ejected")
            try:
                checks = self.health.statuses(probe_id)
            except Exception:  # Consul answering slowly must not end the sampling
                continue
            # A restarted instance's checks start critical; that is not the fault being timed.
            if "critical" in checks.values() and not self.recovering.is_set():
                if "critical" not in watch.firsts:
                    self.first_critical = sorted(c for c, s in checks.items() if s == "critical")
                watch.mark("Consul: check critical", key="critical")

    def _inject(self) -> None:
        probe, watch = self.probe, self.watch
        if self.fault == "kill":
            watch.fault(f"kill -9 {probe.id}")
            probe.kill()
            self.exited.set()
        elif self.fault == "term":
            watch.fault(f"SIGTERM {probe.id} (graceful shutdown)")
            probe.send(signal.SIGTERM)

            def wait_exit() -> None:
                probe.child.popen.wait(30)
                watch.mark(f"{probe.id} exited (code {probe.child.popen.returncode})", key="exited")
                self.exited.set()

            threading.Thread(target=wait_exit, daemon=True).start()
        else:
            watch.fault(f"SIGSTOP {probe.id} (hung, still listening)")
            probe.send(signal.SIGSTOP)

    def _noticed(self) -> dict[str, Any]:
        """Wait for Consul, the watcher and the client to notice the fault; the seconds each took."""
        probe, watch, health, patience = self.probe, self.watch, self.health, self.patience
        if self.fault == "term":
            health.wait_gone(probe.id, timeout=patience)
            watch.mark("Consul: deregistered by the instance itself", key="gone")
        else:

            def critical() -> dict[str, str] | None:
                found = health.statuses(probe.id)
                return found if "critical" in found.values() else None

            checks = wait_for(critical, patience, f"a critical check of {probe.id}")
            if "critical" not in watch.firsts:
                self.first_critical = sorted(c for c, s in checks.items() if s == "critical")
            watch.mark("Consul: check critical", key="critical")
        health.wait_listed(probe.service, probe.id, listed=False, timeout=patience)
        wait_for(lambda: "dropped" in watch.firsts, 10, "the picker to drop the probe")
        if self.params.wait_deregister and self.fault != "term":
            health.wait_gone(probe.id, timeout=parse_duration(self.params.deregister_after) + 90)
            watch.mark("Consul: reaped the critical instance (DeregisterCriticalServiceAfter)", key="reaped")
        if self.fault == "term":
            self.exited.wait(15)
        return {
            "seconds_to_critical": watch.first("critical"),
            "seconds_to_removed": watch.first("watch-removed"),
            "seconds_to_client_stopped": watch.first("dropped"),
            "seconds_to_first_client_failure": watch.first("probe-failed"),
            "first_critical": self.first_critical,
        }

    def _wait_probe_passing(self) -> None:
        """Until Consul lists the probe as passing; if it never does, the error says what its checks and its own
        log say (a check's output names the reason: refused, timed out, TTL not updated)."""
        probe = self.probe
        try:
            self.health.wait_listed(probe.service, probe.id, listed=True, timeout=self.patience)
        except WaitTimeout as err:
            checks = "; ".join(f"{c.check_id} {c.status}: {c.output[:160]}" for c in self.health.checks(probe.id))
            raise WaitTimeout(
                f"{err}; its checks: {checks or 'none registered'}; its last log lines:\n{probe.tail()}"
            ) from None

    def _recover(self) -> dict[str, Any]:
        """Resume or restart the probe and wait until calls reach it again; when recovery started and how long it
        took."""
        probe, watch = self.probe, self.watch
        self.recovering.set()
        started = round(watch.since(), 3)
        if self.fault == "pause":
            probe.send(signal.SIGCONT)
            watch.mark(f"SIGCONT {probe.id} (resumed)")
        else:
            probe.start()
            watch.mark(f"{probe.id} started again")
        resumed = time.monotonic()
        # The watcher's "added" event marks the moment; waiting on the health API too covers a missed event.
        self._wait_probe_passing()
        wait_for(lambda: "watch-added" in watch.firsts, 10, f"the watcher to see {probe.id} passing again")
        served = wait_for(lambda: self.load.first_served_by(probe.id, resumed), 10, f"calls to reach {probe.id} again")
        watch.mark(f"client: calls served by {probe.id} again", at=served, key="served-again")
        return {"recovery_started": started, "seconds_to_recovered": round(watch.first("served-again") - started, 3)}

    def _clean_up(self) -> None:
        if self.load is not None:
            self.load.stop()
        if self.channel is not None:
            self.channel.close()
        self.watcher.stop()
        self.probe.stop()
        # A killed probe that was not started again stays registered (critical) until Consul reaps it, if ever.
        try:
            if self.health.registered(self.probe.id):
                self.health.client.agent.service.deregister(self.probe.id)
        finally:
            self.health.close()


def service_kill(cluster: Cluster, progress: OnStep | None = None, **params: Any) -> DrillResult:
    """kill -9 the probe under load: Consul's check goes critical, the watcher drops it, clients stop calling it.

    `params` are the fields of ServiceDrillParams.
    """
    return ServiceDrill(cluster, "kill", ServiceDrillParams(**params), progress).run()


def service_term(cluster: Cluster, progress: OnStep | None = None, **params: Any) -> DrillResult:
    """SIGTERM the probe: it deregisters before it stops serving, so no client call fails (no reaping to wait for)."""
    return ServiceDrill(cluster, "term", _without_reaping("service-term", params), progress).run()


def service_pause(cluster: Cluster, progress: OnStep | None = None, **params: Any) -> DrillResult:
    """SIGSTOP the probe: the port still accepts connections, so only timeouts notice; then SIGCONT."""
    return ServiceDrill(cluster, "pause", _without_reaping("service-pause", params), progress).run()


def _without_reaping(drill: str, params: dict[str, Any]) -> ServiceDrillParams:
    if "wait_deregister" in params:
        raise TypeError(
            f"{drill} got an unexpected keyword argument 'wait_deregister': only service-kill waits for Consul to reap"
        )
    return ServiceDrillParams(**params)
