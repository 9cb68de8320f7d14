"""Lesson 14's capstone: a client built by the learner runs traffic through a scripted chaos run against the
real lab (instances killed, hung and restarted, the Consul leader killed), and a service-level objective
checker grades it with a report card."""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from lab_services.core.backoff import Backoff
from lab_services.core.errors import BadInputError
from lab_services.core.http import http_json
from lab_services.core.rpc_errors import LocalRpcError
from lab_services.core.table import Table
from lab_services.core.wait import wait_until
from lab_services.discovery import ConsulWatcher
from lab_services.lessons.measured import Expected, compare
from lab_services.runtime.cluster import Cluster
from lab_services.service import user_pb2

CALL_CAP = 5.0  # a call still running after this counts as failed: the runner stops waiting for it

REMOVAL_GRACE = 1.0
"""Seconds after an instance leaves Consul's passing set, and before it is passed again, in which a call it serves is
not held against the client: the client's own discovery hears the same change a moment earlier or later than the
grader's watcher (another server, a blocking query already on its way), and a call already sent may still be
answered."""

# (seconds after the start, action, target): "leader" means whichever Consul server leads at that moment.
DEFAULT_CHAOS = (
    (2.0, "kill", "user-1"),
    (5.0, "pause", "user-2"),
    (7.0, "kill", "leader"),
    (9.0, "resume", "user-2"),
    (10.0, "start", "leader"),
    (11.0, "start", "user-1"),
)


@dataclass(frozen=True)
class SLO:
    """What the client must achieve during the chaos run."""

    success_ratio: float = 0.97
    p99_ms: float = 500.0
    max_outage: float = 3.0  # the longest stretch of consecutive failed calls, in seconds
    max_sent_to_removed: int = (
        0  # successful calls served by an instance outside Consul's passing set (see REMOVAL_GRACE)
    )


@dataclass
class ChaosRun:
    """Every call (start offset, seconds, ok, code, served by), every fault (offset, action, target) and every change
    of Consul's passing set as the grader's own watcher saw it (offset, 'added', 'removed' or 'changed', instance)."""

    calls: list[tuple[float, float, bool, str, str]] = field(default_factory=list)
    faults: list[tuple[float, str, str]] = field(default_factory=list)
    passing: list[tuple[float, str, str]] = field(default_factory=list)
    duration: float = 0.0

    @property
    def success_ratio(self) -> float:
        return sum(ok for _, _, ok, _, _ in self.calls) / len(self.calls) if self.calls else 0.0

    @property
    def p99_ms(self) -> float:
        took = sorted(s for _, s, _, _, _ in self.calls)
        return took[min(len(took) - 1, int(0.99 * len(took)))] * 1000 if took else float("inf")

    def longest_outage(self) -> float:
        """Seconds from the first to the last call of the longest stretch of calls that all failed."""
        longest, first = 0.0, None
        for at, took, ok, _, _ in sorted(self.calls):
            if ok:
                first = None
                continue
            first = at if first is None else first
            longest = max(longest, at + took - first)
        return longest

    def outside_passing_set(self) -> list[tuple[float, float, str]]:
        """(removed at, passed again at, instance) for every stretch an instance spent out of the passing set; `inf`
        when the run ended first. An instance is only ever outside after a removal: one added later was never left."""
        removed: dict[str, float] = {}
        stretches = []
        for at, kind, instance in sorted(self.passing):
            if kind == "removed":
                removed.setdefault(instance, at)
            elif kind == "added" and instance in removed:
                stretches.append((removed.pop(instance), at, instance))
        return sorted(stretches + [(at, math.inf, instance) for instance, at in removed.items()])

    def sent_to_removed(self, grace: float = REMOVAL_GRACE) -> list[tuple[float, str]]:
        """(start offset, instance) of every call that succeeded although the instance that served it was outside the
        passing set when the call started, more than `grace` seconds after its removal and before it was passed again.
        Failed calls have no `served_by`: the success ratio already counts them."""
        stretches = self.outside_passing_set()
        return [
            (at, served_by)
            for at, _, ok, _, served_by in sorted(self.calls)
            if ok
            and any(
                instance == served_by and removed + grace <= at < back - grace for removed, back, instance in stretches
            )
        ]


def _check_duration(duration: float, chaos: tuple) -> None:
    """A run that ends before its last fault would grade a lab still broken, and never see the client recover."""
    last = max((at for at, _, _ in chaos), default=0.0)
    if duration <= last:
        raise ValueError(f"invalid argument: duration: {duration} s; the faults run until {last} s, so run longer")


def run_chaos(
    cluster: Cluster,
    call: Callable[[user_pb2.CreateUserRequest], str],
    chaos: tuple = DEFAULT_CHAOS,
    duration: float = 14.0,
    rate: float = 20.0,
    progress: Callable[[str], None] = print,
) -> ChaosRun:
    """Send `rate` CreateUser calls a second through `call` for `duration` seconds while `chaos` happens, with the
    grader's own watcher following Consul's passing set (`ChaosRun.passing`); then put the lab back (`restore`) and
    wait for a Consul leader."""
    if not 1 <= rate <= 100:
        raise ValueError(f"invalid argument: rate: {rate}; use 1 to 100 calls a second")
    _check_duration(duration, chaos)
    status = cluster.status()
    with _passing_set_changes(status.config.service_name, list(status.consul.http)) as changes:
        return _run_chaos(cluster, call, chaos, duration, rate, progress, changes)


@contextlib.contextmanager
def _passing_set_changes(service: str, consul_http: list[str]) -> Iterator[list[tuple[float, str, str]]]:
    """The grader's own watcher on Consul's passing set of `service`, ready before the block runs: the list fills with
    (time.monotonic(), kind, instance) for every change, so calls can be checked against what Consul passed."""
    # The referee retries a lost server within half a second: a watcher backing off for seconds after the leader's
    # death would hear a re-admission late and blame the client for calls Consul already passed.
    watcher = ConsulWatcher(service, consul_http, wait="5s", backoff=Backoff(base=0.05, cap=0.5)).start()
    try:
        if not watcher.wait_ready(10):
            raise RuntimeError(
                f"the capstone's grader could not read the passing instances of {service!r} from Consul at "
                f"{', '.join(consul_http)} within 10 s ({watcher.last_error}); check `discovery-lab status`"
            )
        changes: list[tuple[float, str, str]] = []
        watcher.subscribe(lambda event: changes.append((time.monotonic(), event.kind, event.instance.id)))
        yield changes
    finally:
        watcher.stop()


def _run_chaos(
    cluster: Cluster,
    call: Callable[[user_pb2.CreateUserRequest], str],
    chaos: tuple,
    duration: float,
    rate: float,
    progress: Callable[[str], None],
    changes: list[tuple[float, str, str]],
) -> ChaosRun:
    """run_chaos once the grader's watcher is ready; `changes` is its record of the passing set."""
    run, stop, lock = ChaosRun(), threading.Event(), threading.Lock()
    began = time.monotonic()
    numbers = itertools.count()

    def one(n: int) -> None:
        start = time.monotonic()
        request = user_pb2.CreateUserRequest(name=f"chaos {n}", email=f"chaos-{n}-{int(began)}@lab.example")
        try:
            served_by, ok, code = str(call(request)), True, "OK"
        except LocalRpcError as err:  # the client refused the call itself: say which refusal (an open breaker...)
            served_by, ok, code = "", False, f"{err.code().name} ({type(err).__name__})"
        except grpc.RpcError as err:
            served_by, ok, code = "", False, err.code().name if hasattr(err, "code") else type(err).__name__
        except Exception as err:
            served_by, ok, code = "", False, type(err).__name__
        with lock:
            run.calls.append((start - began, time.monotonic() - start, ok, code, served_by))

    pool = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="chaos-traffic")

    def traffic() -> None:
        pending = []
        while not stop.wait(1 / rate):
            pending.append(pool.submit(one, next(numbers)))
        for future in pending:
            try:
                future.result(timeout=CALL_CAP)
            except futures.TimeoutError:
                with lock:
                    run.calls.append((0.0, CALL_CAP, False, "HUNG", ""))

    sender = threading.Thread(target=traffic, name="chaos-sender", daemon=True)
    sender.start()
    leader = ""
    try:
        for at, action, target in chaos:
            time.sleep(max(0.0, at - (time.monotonic() - began)))
            if target == "leader":
                leader = leader if action == "start" else (cluster.status().consul.leader or "")
                name = leader
            else:
                name = target
            getattr(cluster, action)(name)
            run.faults.append((time.monotonic() - began, action, name))
            progress(f"{time.monotonic() - began:5.1f} s  {action} {name}")
        time.sleep(max(0.0, duration - (time.monotonic() - began)))
    finally:
        stop.set()
        sender.join(CALL_CAP + 5)
        pool.shutdown(wait=False, cancel_futures=True)
        run.duration = time.monotonic() - began
        run.passing = [(at - began, kind, instance) for at, kind, instance in list(changes)]
        steps = cluster.reset()
        if steps:
            progress("put back: " + ", ".join(steps))
        wait_until(lambda: _tolerates_a_failure(cluster), 60, "the Consul servers to tolerate a failure again")
    return run


class ClientError(BadInputError):
    """A learner's client could not even start: the message is the sentence a learner or an instructor reads."""


def run_client(
    cluster: Cluster, build_client: Any, duration: float = 14.0, progress: Callable[[str], None] = print
) -> ChaosRun:
    """Build a client with `build_client(consul_http)` (the 14-capstone contract), run it through the chaos run and
    close it (its `close` attribute, when it has one). A builder that is not one raises ClientError, never a
    traceback."""
    if not callable(build_client):
        raise ClientError(
            "pass a function build_client(consul_http) that returns call(request) -> the instance that served it"
        )
    try:
        call = build_client(list(cluster.status().consul.http))
    except Exception as err:
        raise ClientError(f"build_client raised {type(err).__name__}: {err}") from None
    if not callable(call):
        raise ClientError(f"build_client returned {call!r}; return a function call(request) -> served_by")
    try:
        return run_chaos(cluster, call, duration=duration, progress=progress)
    finally:
        close = getattr(call, "close", None)
        if callable(close):
            close()


def load_build_client(path: Path | str) -> Callable:
    """The `build_client` a learner's file defines. A file that is missing, does not import, or defines no such
    function raises ClientError saying which."""
    path = Path(path)
    if not path.is_file():
        raise ClientError(f"{path}: no such file")
    spec = importlib.util.spec_from_file_location(f"capstone_client_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):
            raise
        raise ClientError(f"{path.name} does not import: {type(err).__name__}: {err}") from None
    build_client = getattr(module, "build_client", None)
    if not callable(build_client):
        raise ClientError(f"{path.name} defines no function build_client(consul_http)")
    return build_client


def check_lab_shape(cluster: Cluster) -> None:
    """The chaos run kills `user-1`, hangs `user-2` and kills the Consul leader: refuse a lab that has not got them,
    before anything is disturbed."""
    status = cluster.status()
    names = {p.name for p in status.processes}
    missing = [n for n in ("user-1", "user-2") if n not in names]
    if len(status.consul.http) < 3 or missing or status.config.registry == "etcd":
        raise ValueError(
            "the capstone's chaos run needs 3 Consul servers and user-1, user-2 registered in Consul "
            f"(this lab: {len(status.consul.http)} Consul servers, registry {status.config.registry}"
            + (f", no {', '.join(missing)}" if missing else "")
            + "); start one with "
            "`discovery-lab up --consul-servers 3 --services 3 --consul-clients 3`"
        )


def scoreboard(
    cluster: Cluster,
    contenders: list[tuple[str, Callable | ClientError]],
    slo: SLO = SLO(),
    duration: float = 14.0,
    progress: Callable[[str], None] = print,
) -> Table:
    """Each contender (who, its build_client or why there is none) through the chaos run, one after another: one
    row each with the measured numbers and PASS, FAIL with the missed objectives, or ERROR with the reason."""
    _check_duration(duration, DEFAULT_CHAOS)
    check_lab_shape(cluster)
    rows = []
    for who, build_client in contenders:
        row: dict[str, Any] = {
            "who": who,
            "success ratio": None,
            "p99 ms": None,
            "longest outage s": None,
            "sent to removed": None,
        }
        try:
            if isinstance(build_client, ClientError):
                raise build_client
            progress(f"{who}: chaos run")
            run = run_client(cluster, build_client, duration=duration, progress=progress)
        except ClientError as err:
            rows.append({**row, "verdict": "ERROR", "why": str(err)})
            continue
        card = grade(run, slo)
        rows.append(
            {
                **row,
                "success ratio": round(run.success_ratio, 4),
                "p99 ms": round(run.p99_ms, 1),
                "longest outage s": round(run.longest_outage(), 2),
                "sent to removed": len(run.sent_to_removed()),
                "verdict": "PASS" if card.passed else "FAIL",
                "why": "; ".join(card.failed()),
            }
        )
    return Table(rows)


def _tolerates_a_failure(cluster: Cluster) -> bool:
    """Autopilot says every server is healthy (in contact and caught up) and one more may fail: a server that
    restarted late in the run must catch up before the next run may kill a leader again."""
    for address in cluster.status().consul.http:
        try:
            health = http_json(f"http://{address}/v1/operator/autopilot/health")
        except (OSError, ValueError):
            continue
        return bool(health.get("Healthy")) and health.get("FailureTolerance", 0) >= 1
    return False


@dataclass(frozen=True)
class ReportCard:
    """The SLO verdict: passed, and one row per objective with what was measured."""

    passed: bool
    rows: list[dict[str, Any]]

    def table(self) -> Table:
        return Table(self.rows)

    def _repr_html_(self) -> str:
        return f"<p><b>{'PASSED' if self.passed else 'FAILED'}</b></p>" + self.table()._repr_html_()

    def __repr__(self) -> str:
        return (
            ("PASSED" if self.passed else "FAILED")
            + "\n"
            + "\n".join(f"{r['objective']}: {r['measured']} ({r['verdict']})" for r in self.rows)
        )

    def failed(self) -> list[str]:
        """`objective: measured` for every objective that was missed."""
        return [f"{r['objective']}: {r['measured']}" for r in self.rows if r["verdict"] != "pass"]


def grade(run: ChaosRun, slo: SLO = SLO()) -> ReportCard:
    """Compare a chaos run with the SLO, objective by objective."""
    outage, sent, outside = run.longest_outage(), run.sent_to_removed(), run.outside_passing_set()
    failures = [code for _, _, ok, code, _ in run.calls if not ok]
    rows = [
        {
            "objective": f"success ratio >= {slo.success_ratio:.0%}",
            "measured": f"{run.success_ratio:.1%} of {len(run.calls)} calls"
            + (f" (failures: {dict(sorted((c, failures.count(c)) for c in set(failures)))})" if failures else ""),
            "verdict": "pass" if run.success_ratio >= slo.success_ratio else "FAIL",
        },
        {
            "objective": f"p99 latency <= {slo.p99_ms:.0f} ms",
            "measured": f"{run.p99_ms:.0f} ms",
            "verdict": "pass" if run.p99_ms <= slo.p99_ms else "FAIL",
        },
        {
            "objective": f"no outage (calls failing in a row) longer than {slo.max_outage:.0f} s",
            "measured": f"longest {outage:.1f} s",
            "verdict": "pass" if outage <= slo.max_outage else "FAIL",
        },
        {
            "objective": (f"at most {slo.max_sent_to_removed} calls" if slo.max_sent_to_removed else "no call")
            + f" served by an instance outside the passing set (after {REMOVAL_GRACE:g} s of grace)",
            "measured": f"{len(sent)} calls"
            + (f", the first served by {sent[0][1]} at {sent[0][0]:.1f} s" if sent else "")
            + " (outside: "
            + (", ".join(_stretch(*s) for s in outside) or "none")
            + ")",
            "verdict": "pass" if len(sent) <= slo.max_sent_to_removed else "FAIL",
        },
    ]
    return ReportCard(all(r["verdict"] == "pass" for r in rows), rows)


def _stretch(removed: float, back: float, instance: str) -> str:
    """'user-1 2.6-11.7 s', or 'user-1 from 2.6 s' when the run ended before Consul passed it again."""
    return f"{instance} from {removed:.1f} s" if math.isinf(back) else f"{instance} {removed:.1f}-{back:.1f} s"


def served_share(run: ChaosRun) -> Table:
    """Which instance answered, per second of the run: the client's view of the chaos."""
    seconds: dict[int, dict[str, int]] = {}
    for at, _, ok, code, served_by in run.calls:
        row = seconds.setdefault(int(at), {})
        key = served_by if ok else f"failed {code}"
        row[key] = row.get(key, 0) + 1
    return Table([{"second": s, **counts} for s, counts in sorted(seconds.items())])


def median_ms(run: ChaosRun) -> float:
    return round(statistics.median(s for _, s, _, _, _ in run.calls) * 1000, 1) if run.calls else 0.0


# -- what the learner's run measured ---------------------------------------------------------------------------
def naive_figures(run: ChaosRun) -> tuple[Expected, Expected]:
    """What the naive client (user-1 alone) is expected to score in `run`: it fails from user-1's kill until user-1
    is started again, so its outage is user-1's downtime in this run (from the run's own fault times, the start
    counted when it finished) and its successes are the seconds outside it."""
    at = {action: when for when, action, target in run.faults if target == "user-1"}
    down = at["start"] - at["kill"]
    return (
        Expected(
            f"naive client: success ratio (user-1 down {down:.1f} s of {run.duration:.1f} s)",
            "%",
            max(0.0, 100 * (run.duration - down - 2) / run.duration),
            100 * (run.duration - down + 1) / run.duration,
            "it failed outside user-1's downtime too: read its failures by code on its report card",
            "it was served while user-1 was down: the faults did not happen as printed with the run",
        ),
        Expected(
            f"naive client: longest outage (user-1 down {down:.1f} s)",
            "s",
            max(0.0, down - 1),
            down + 2,
            "user-1 served again before its start had finished: read the fault times printed with the run",
            "user-1 took a while to serve after its start: a loaded machine",
        ),
    )


def reference_figures(slo: SLO) -> list[Expected]:
    """What the reference client is expected to score: each objective of `slo` is the edge of its range."""
    return [
        Expected(
            "reference client: success ratio",
            "%",
            100 * slo.success_ratio,
            100,
            "more calls failed than the "
            "objective allows: read the failures by code on its report card (DEADLINE_EXCEEDED: the hang)",
            "",
        ),
        Expected(
            "reference client: p99 latency",
            "ms",
            0,
            slo.p99_ms,
            "",
            "above the objective: calls waited on the hung "
            "instance longer than a deadline under the objective allows (the reference gives each call 250 ms)",
        ),
        Expected(
            "reference client: longest outage",
            "s",
            0,
            slo.max_outage,
            "",
            "a stretch of failures in a row: its "
            "watcher lost every Consul server, or every instance it knew was down at once",
        ),
        Expected(
            "reference client: calls served by a removed instance",
            "calls",
            0,
            slo.max_sent_to_removed,
            "",
            "it called an instance Consul had taken out: a client that keeps an address list it found once does that",
        ),
    ]


def what_you_saw(reference_run: ChaosRun, slo: SLO, naive_run: ChaosRun | None = None) -> Table:
    """Lesson 14's figures from this run (the naive client's too, when it ran) beside the ranges the lab expects and
    what a figure outside one means."""
    figures = []
    if naive_run is not None:
        ratio, outage = naive_figures(naive_run)
        figures += [(ratio, 100 * naive_run.success_ratio), (outage, naive_run.longest_outage())]
    measured = [
        100 * reference_run.success_ratio,
        reference_run.p99_ms,
        reference_run.longest_outage(),
        len(reference_run.sent_to_removed()),
    ]
    return compare([*figures, *zip(reference_figures(slo), measured, strict=True)])
