"""The etcd drills: kill -9 the leader (leases, watches and writes carry on), and lose a quorum (writes refused until
one member returns).

Each member is asked through its own JSON gateway (core.etcd_gateway), so a drill chooses exactly which member answers.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

from lab_services.core.etcd_gateway import EtcdGateway
from lab_services.core.network import kernel_host
from lab_services.core.raft import etcd_leader as leader_of
from lab_services.core.wait import wait_for
from lab_services.core.wire import ETCD_SERVICES_PREFIX
from lab_services.discovery.etcd_watcher import EtcdWatcher
from lab_services.lessons.drills.result import DrillResult, Stopwatch
from lab_services.lessons.drills.servers import etcd_endpoints, kill_leader
from lab_services.runtime.cluster import Cluster


def _gateway(endpoint: str) -> EtcdGateway:
    """One member's gateway with a short timeout: a drill asks a member that may just have been killed."""
    return EtcdGateway(endpoint, timeout=1.0)


def _drill_instance(service: str, instance_id: str, port: int) -> str:
    host = kernel_host()  # nothing dials it, but an instance this kernel writes names the kernel's address
    return json.dumps(
        {
            "id": instance_id,
            "name": service,
            "address": f"{host}:{port}",
            "host": host,
            "port": port,
            "tags": ["drill"],
            "meta": {},
        }
    )


def etcd_leader(cluster: Cluster, lease_ttl: int = 5, patience: float = 30.0) -> DrillResult:
    """kill -9 the etcd leader: a new one is elected, a lease kept alive survives, a watch resumes; then restart it.

    One scripted sequence under one try/finally, longer than most functions on purpose: whatever fails in
    between, the `finally` must stop the keepalive, start the killed leader again and revoke the lease.
    """
    status = cluster.status()
    leader = status.etcd.leader
    endpoint = etcd_endpoints(status)
    members = list(endpoint)
    if len(members) < 3 or leader is None:
        raise RuntimeError(
            f"the etcd-leader drill needs 3 etcd members with a leader; the lab has {len(members)}; "
            "start it with etcd_members=3"
        )
    survivors = [n for n in members if n != leader]
    ask = _gateway(endpoint[survivors[0]])
    service = "drill-etcd"
    lease = ask.call("lease/grant", {"TTL": lease_ttl})["ID"]
    ask.put(f"{ETCD_SERVICES_PREFIX}/{service}/before", _drill_instance(service, "before", 1), lease)
    watch = Stopwatch()
    # The lab's own watcher, over every member, so it has to move to a survivor when its member dies.
    watcher = EtcdWatcher(service, [endpoint[n] for n in members]).start()
    watcher.wait_ready(10)
    watcher.subscribe(
        lambda e: watch.mark(
            f"watcher: saw key {e.instance.id!r} {e.kind} (the watch carried on)",
            wall=e.at,
            key=f"watch-{e.instance.id}",
        )
    )
    stop_keepalive = threading.Event()
    keepalive_errors = []

    def keepalive() -> None:
        # A client keeps its lease alive every TTL/3, against whichever member answers.
        while not stop_keepalive.wait(lease_ttl / 3):
            for name in [leader, *survivors]:
                try:
                    answer = _gateway(endpoint[name]).call("lease/keepalive", {"ID": lease})
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
        new = kill_leader(
            cluster, watch, leader, "etcd", lambda: leader_of({n: endpoint[n] for n in survivors}), patience
        )
        wait_for(
            lambda: _gateway(endpoint[new]).put(
                f"{ETCD_SERVICES_PREFIX}/{service}/after", _drill_instance(service, "after", 2), lease
            ),
            patience,
            "a write to the new leader",
        )
        watch.mark("write accepted by the new leader", key="write")
        wait_for(
            lambda: "watch-after" in watch.firsts, patience, "the watcher to deliver the write made after the failover"
        )
        wait_for(lambda: "keepalive" in watch.firsts, patience, "a lease keepalive after the failover")
        lab_keys = len(_gateway(endpoint[new]).keys(f"{ETCD_SERVICES_PREFIX}/{status.config.service_name}/"))
        watch.mark(f"the lab's {lab_keys} registrations are still there (their leases survived)", key="registrations")
        recovery = round(watch.since(), 3)
        watch.mark(f"start {leader} again")
        cluster.start(leader)
        killed = False
        watch.mark(f"{leader} healthy again", key="healthy")
        agreed = wait_for(lambda: leader_of(endpoint), patience, "one leader for all members")
        watch.mark(f"all {len(members)} members agree on leader {agreed}", key="agreed")
        return DrillResult(
            "etcd-leader",
            {"lease_ttl": lease_ttl, "patience": patience},
            watch.timeline(),
            {
                "old_leader": leader,
                "new_leader": new,
                "seconds_to_new_leader": watch.first("elected"),
                "seconds_to_write": watch.first("write"),
                "seconds_to_watch_resumed": watch.first("watch-after"),
                "seconds_to_keepalive": watch.first("keepalive"),
                "lab_registrations": int(lab_keys),
                "recovery_started": recovery,
                "seconds_to_healthy": watch.first("healthy"),
            },
        )
    finally:
        stop_keepalive.set()
        if killed:
            cluster.start(leader)
        watcher.stop()
        for name in survivors:
            try:
                _gateway(endpoint[name]).call("lease/revoke", {"ID": lease}, timeout=3)
                break
            except (OSError, ValueError):
                continue


def etcd_quorum(cluster: Cluster, down_for: float = 2.0, patience: float = 30.0) -> DrillResult:
    """kill -9 two of three etcd members: writes fail without a quorum; start one again and they succeed."""
    status = cluster.status()
    endpoint = etcd_endpoints(status)
    members = list(endpoint)
    leader = status.etcd.leader
    if len(members) < 3:
        raise RuntimeError(
            f"the etcd-quorum drill needs 3 etcd members; the lab has {len(members)}; start it with etcd_members=3"
        )
    # The leader stays, so it is the leader that finds itself alone and has to step down.
    survivor = leader or members[0]
    victims = [n for n in members if n != survivor][:2]
    key = "/drills/etcd-quorum"
    _gateway(endpoint[survivor]).put(key, "before")
    watch = Stopwatch()
    down = list(victims)

    def write(value: str) -> bool:
        try:
            _gateway(endpoint[survivor]).put(key, value)
            return True
        except (OSError, ValueError):
            return False

    try:
        watch.fault(f"kill -9 {' and '.join(victims)} (2 of {len(members)} members)")
        for name in victims:
            cluster.kill(name)
        wait_for(lambda: not write("without quorum"), patience, "a write to fail without a quorum", interval=0.2)
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
        wait_for(lambda: write("after quorum"), patience, "a write to succeed again", interval=0.1)
        watch.mark(f"write to {survivor} succeeded again", key="write-ok")
        cluster.start(victims[1])
        down.remove(victims[1])
        watch.mark(f"{victims[1]} healthy: all {len(members)} members back", key="all-back")
        return DrillResult(
            "etcd-quorum",
            {"down_for": down_for, "patience": patience},
            watch.timeline(),
            {
                "killed": victims,
                "survivor": survivor,
                "refused_writes": attempts,
                "recovery_started": recovery,
                "seconds_to_quorum": watch.first("quorum"),
                "seconds_to_write_ok": watch.first("write-ok"),
                "seconds_to_all_back": watch.first("all-back"),
            },
        )
    finally:
        for name in down:
            cluster.start(name)
        with contextlib.suppress(OSError, ValueError):
            _gateway(endpoint[survivor]).delete(key, timeout=3)
