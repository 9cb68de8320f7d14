"""Lesson 10's experiments: settings written to Consul KV or etcd and applied live by every instance, measured.

store = lab_store(cluster, "consul")
settings_table(instances_of(cluster))                          # each instance's effective settings and revision
with Fleet("etcd", cluster, size=3) as fleet:                  # in-process instances following etcd
    time_propagation(store, fleet.admins, repeats=5)           # write -> every instance applied, in ms
lost_update(store, cas=True)                                   # two writers, one read: check-and-set keeps both
what_you_saw(first_delay_ms, results, outages)                 # the learner's figures beside the expected ranges
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from lab_services.core.table import Table
from lab_services.core.wait import wait_until
from lab_services.lessons.measured import Expected, compare
from lab_services.runtime.cluster import Cluster
from lab_services.service import AdminClient, UserServer
from lab_services.service.config_store import (
    CasConflict,
    ConfigStore,
    StoreUnavailable,
    default_prefix,
    open_store,
)
from lab_services.service.settings import SCHEMA, RuntimeSettings, Setting


def store_address(cluster: Cluster, kind: str) -> str:
    """Where the lab's `kind` store answers: Consul's first agent, or every etcd member (comma-separated)."""
    status = cluster.status()
    return status.consul.http[0] if kind == "consul" else ",".join(status.etcd.endpoints)


def lab_store(cluster: Cluster, kind: str, prefix: str | None = None) -> ConfigStore:
    """A client of the store holding the lab's settings (`config/<service>` unless `prefix` says otherwise)."""
    return open_store(
        kind, store_address(cluster, kind), prefix or default_prefix(cluster.status().config.service_name)
    )


def instances_of(cluster: Cluster) -> dict[str, AdminClient]:
    """The admin client of every running lab instance, by id."""
    return {s.id: AdminClient(s.admin, timeout=2) for s in cluster.status().services if s.state == "running"}


def settings_table(instances: Mapping[str, AdminClient]) -> Table:
    """One row per instance: the revision it applied, its values, and whether it rejected a snapshot or lost its
    store."""
    rows = []
    for name, admin in instances.items():
        try:
            report = admin.settings()
        except OSError as err:
            rows.append({"instance": name, "revision": None, "store": f"no answer: {err}"})
            continue
        rejected = report["rejected"]
        rows.append(
            {
                "instance": name,
                "source": report["source"],
                "revision": report["revision"],
                **report["values"],
                "store": report["store"]
                if report["store"] == "reachable"
                else f"UNREACHABLE, keeping {report['keeping']}",
                "rejected": ""
                if not rejected
                else f"revision {rejected['revision']}: {'; '.join(rejected['errors'].values())}",
            }
        )
    return Table(rows)


def wait_applied(instances: Mapping[str, AdminClient], key: str, value: Any, timeout: float = 10.0) -> dict[str, dict]:
    """Wait until every instance reports `key == value`; their reports (TimeoutError naming the laggards otherwise)."""
    reports: dict[str, dict] = {}

    def done() -> bool:
        reports.update({n: a.settings() for n, a in instances.items()})
        return all(r["values"].get(key) == value for r in reports.values())

    def late() -> str:
        return "not applied by " + ", ".join(n for n, r in reports.items() if r["values"].get(key) != value)

    wait_until(done, timeout, f"{key}={value!r} on every instance", interval=0.01, seen=late)
    return reports


def time_propagation(
    store: ConfigStore,
    instances: Mapping[str, AdminClient],
    repeats: int = 5,
    progress: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Write a fresh greeting `repeats` times; each time, ms from just before the write to the last instance's apply.

    Each instance stamps the wall-clock time it applied a snapshot, so the figure does not depend on how often we
    poll; all processes share this machine's clock.
    """
    samples = []
    for n in range(repeats):
        value = f"hello {uuid.uuid4().hex[:6]}"
        written = time.time()
        store.put("greeting", value)
        reports = wait_applied(instances, "greeting", value)
        samples.append(round(1000 * (max(r["applied_at"] for r in reports.values()) - written), 1))
        if progress:
            progress(f"{store.kind}: write {n + 1}/{repeats} applied by all {len(instances)} in {samples[-1]} ms")
        time.sleep(0.2)
    return {
        "store": store.kind,
        "instances": len(instances),
        "samples_ms": samples,
        "median_ms": statistics.median(samples),
        "min_ms": min(samples),
        "max_ms": max(samples),
    }


class Fleet:
    """`size` in-process user-service instances following the lab's `kind` store, for a side-by-side measurement."""

    def __init__(
        self,
        kind: str,
        cluster: Cluster,
        size: int = 3,
        prefix: str | None = None,
        schema: Mapping[str, Setting] | None = None,
    ):
        self.kind = kind
        self.address = store_address(cluster, kind)
        self.prefix = prefix or default_prefix(cluster.status().config.service_name)
        self.schema = dict(schema or SCHEMA)
        self.size = size
        self.servers: list[UserServer] = []

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Fleet:
        try:
            for i in range(1, self.size + 1):
                self.servers.append(
                    UserServer(
                        instance_id=f"{self.kind}-follower-{i}",
                        config_store=open_store(self.kind, self.address, self.prefix),
                        settings=RuntimeSettings(self.schema),
                    ).start()
                )
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def admins(self) -> dict[str, AdminClient]:
        return {s.instance_id: AdminClient(s.http_address, timeout=2) for s in self.servers}

    def stop(self) -> None:
        for server in self.servers:
            server.stop(0)
        self.servers.clear()


def propagation_table(results: list[dict[str, Any]]) -> Table:
    return Table(
        [
            {
                "store": r["store"],
                "instances": r["instances"],
                "median ms": r["median_ms"],
                "min ms": r["min_ms"],
                "max ms": r["max_ms"],
                "every write (ms)": r["samples_ms"],
            }
            for r in results
        ]
    )


def lost_update(
    store: ConfigStore, cas: bool, writers: tuple[str, ...] = ("alice", "bob"), patience: float = 20.0
) -> dict[str, Any]:
    """Two writers read the greeting at the same revision, each appends its name and writes it back.

    Without check-and-set the second write silently replaces the first (a lost update). With it, the second is
    refused (CasConflict), reads again and retries, so both names survive.

    A write that times out may still have landed (a slow disk under the Raft log), so a writer reads the greeting
    back: its own text there means done, anything else means try again. A writer that still fails after
    `patience` seconds raises here, instead of dying in its thread and looking like a lost update.
    """
    store.put("greeting", "team:")
    seen = store.snapshot()
    conflicts = 0
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(writers))
    lock = threading.Lock()  # only orders the writes (alice, then bob), so the outcome is the same on every run
    deadline = time.monotonic() + patience

    def write(name: str, order: int) -> None:
        nonlocal conflicts
        text, revision = seen.values["greeting"], seen.modified["greeting"]
        barrier.wait()
        time.sleep(0.05 * order)
        while True:
            with lock:
                try:
                    try:
                        store.put("greeting", f"{text} {name}", cas=revision if cas else None)
                        return
                    except CasConflict:
                        conflicts += 1
                        fresh = store.snapshot()
                        text, revision = fresh.values["greeting"], fresh.modified["greeting"]
                except StoreUnavailable:
                    if time.monotonic() > deadline:
                        raise
                    if _read_back(store, "greeting") == f"{text} {name}":
                        return
                    time.sleep(0.2)

    def run(name: str, order: int) -> None:
        try:
            write(name, order)
        except BaseException as err:  # handed to the caller's thread below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(name, i)) for i, name in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(patience + 10)
    if errors:
        raise errors[0]
    final = store.snapshot().values["greeting"]
    return {
        "store": store.kind,
        "check_and_set": cas,
        "final greeting": final,
        "conflicts": conflicts,
        "lost": [w for w in writers if w not in final.split()],
    }


def _read_back(store: ConfigStore, key: str) -> str | None:
    """The key's value now, or None when the store does not answer either (the caller tries again)."""
    try:
        return store.snapshot().values.get(key)
    except StoreUnavailable:
        return None


def store_outage(
    cluster: Cluster,
    kind: str,
    instances: Mapping[str, AdminClient],
    store: ConfigStore,
    timeout: float = 30.0,
    progress: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Take away quorum (stop two of three servers), watch instances keep their settings, bring it back, write again.

    Returns the timings: seconds until every instance reported the store unreachable, whether a write during the
    outage failed, and seconds from the servers being back to every instance applying a new value.
    """
    victims = [f"{kind}-2", f"{kind}-3"]
    before = {n: a.settings()["values"] for n, a in instances.items()}
    started = time.monotonic()
    for name in victims:
        cluster.stop(name)
    say = progress or (lambda _: None)
    say(f"stopped {', '.join(victims)}: {kind} has no quorum")
    result: dict[str, Any] = {"store": kind, "stopped": victims}
    try:
        wait_until(
            lambda: all(a.settings()["store"] == "unreachable" for a in instances.values()),
            timeout,
            "every instance to report the store unreachable",
        )
        result["seconds_to_notice"] = round(time.monotonic() - started, 2)
        say(f"every instance says the store is unreachable after {result['seconds_to_notice']} s")
        result["kept"] = all(a.settings()["values"] == before[n] for n, a in instances.items())
        try:
            store.put("latency_ms", "0")
            result["write_during_outage"] = "accepted"
        except OSError as err:
            result["write_during_outage"] = f"refused: {str(err)[:90]}"
        result["table_during"] = settings_table(instances)
    finally:
        back = time.monotonic()
        # One at a time is enough: the first one back makes two of three, a quorum. Not `reset()`, which would also
        # wipe what the lesson keeps in the stores (settings, history) and reset every instance mid-lesson.
        for name in victims:
            cluster.start(name)
    say(f"{', '.join(victims)} are back after {time.monotonic() - back:.1f} s")
    value = f"back {uuid.uuid4().hex[:4]}"
    written = time.monotonic()
    wait_until(lambda: _put_quietly(store, "greeting", value), timeout, f"{kind} to accept writes again")
    wait_applied(instances, "greeting", value, timeout)
    result["seconds_to_catch_up"] = round(time.monotonic() - written, 2)
    say(f"a new greeting reached every instance {result['seconds_to_catch_up']} s after the first write attempt")
    return result


def _put_quietly(store: ConfigStore, key: str, value: str) -> bool:
    try:
        store.put(key, value)
        return True
    except OSError:
        return False


_BUSY = "the machine is busy (another notebook, a test run) or a follower was still re-reading after the previous write"
FIRST_WRITE = Expected(
    "section 1: one write, applied by all three lab instances", "ms", 0, 100, "", _BUSY + "; above 1 s would be polling"
)
PROPAGATION = {
    store: Expected(f"section 2: median, write to every follower, {store}", "ms", 0, high, "", _BUSY)
    for store, high in (("consul (lab processes)", 50), ("consul", 50), ("etcd", 100))
}
_NOTICE_BELOW = "the store failed fast (the agent asked forwards to a leader that is gone and answers an error at once)"
OUTAGE_NOTICE = {
    "consul": Expected(
        "section 6: quorum lost to every instance saying so, consul",
        "s",
        0,
        15,
        _NOTICE_BELOW,
        "a request held longer than the follower's 8.5 s timeout and Consul's 7 s hold: a heavily loaded machine",
    ),
    "etcd": Expected(
        "section 6: quorum lost to every instance saying so, etcd",
        "s",
        3,
        20,
        "a member refused at once instead of holding the read until the client's 3 s timeout",
        "each of the three members held the read for its full timeout, and the machine is loaded",
    ),
}
CATCH_UP = {
    store: Expected(
        f"section 6: servers back to a write applied everywhere, {store}",
        "s",
        0,
        5,
        "",
        "the new election took long, or the followers were still backing off (up to 2 s between tries)",
    )
    for store in ("consul", "etcd")
}


def what_you_saw(first_delay_ms: float, results: list[dict[str, Any]], outages: list[dict[str, Any]]) -> Table:
    """Lesson 10's figures from this run (section 1's write, section 2's medians, section 6's outages) beside the
    ranges the lab expects, and what a figure outside one means."""
    figures = [(FIRST_WRITE, first_delay_ms)]
    figures += [(PROPAGATION[r["store"]], r["median_ms"]) for r in results]
    figures += [(OUTAGE_NOTICE[o["store"]], o["seconds_to_notice"]) for o in outages]
    figures += [(CATCH_UP[o["store"]], o["seconds_to_catch_up"]) for o in outages]
    return compare(figures)
