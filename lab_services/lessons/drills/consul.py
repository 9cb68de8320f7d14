"""The Consul server drill: kill -9 the leader, time the election, check registrations and KV survive, restart it."""

from __future__ import annotations

import uuid

from lab_services.core.raft import consul_leader as leader_of
from lab_services.core.wait import wait_for
from lab_services.discovery.consul_watcher import ConsulWatcher
from lab_services.lessons.drills.result import DrillResult, Stopwatch
from lab_services.lessons.drills.servers import consul_servers, kill_leader
from lab_services.registry.consul_health import ConsulHealth
from lab_services.runtime.cluster import Cluster


def consul_leader(cluster: Cluster, patience: float = 30.0) -> DrillResult:
    """kill -9 the Consul leader: a new one is elected, registrations and a KV key survive; then restart it."""
    status = cluster.status()
    leader = status.consul.leader
    servers = consul_servers(status)
    if len(servers) < 3 or leader is None:
        raise RuntimeError(
            f"the consul-leader drill needs 3 Consul servers with a leader; the lab has {len(servers)} "
            f"(leader {leader}); start it with consul_servers=3"
        )
    survivors = [n for n in servers if n != leader]
    service = status.config.service_name
    key, token = "drills/consul-leader", uuid.uuid4().hex
    ask = ConsulHealth(servers[survivors[0]].http)
    ask.client.kv.put(key, token)
    registered = ask.instances(service)
    watch = Stopwatch()
    watcher = ConsulWatcher(service, [servers[n].http for n in survivors]).start()
    watcher.wait_ready(10)
    watcher.subscribe(lambda e: watch.mark(f"watcher: {e.instance.id} {e.kind} in the passing set", wall=e.at))
    killed = True  # from here on, `finally` starts the leader again (a no-op if it still runs)
    try:
        new = kill_leader(cluster, watch, leader, "Consul", lambda: leader_of(servers, ask=survivors), patience)
        value = wait_for(lambda: ask.client.kv.get(key)[1], patience, f"KV {key} to be readable")
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
        seen = wait_for(lambda: leader_of(servers, ask=[leader]), patience, f"{leader} to see a leader")
        watch.mark(f"{leader} rejoined and sees leader {seen}", key="rejoined")
        wait_for(
            lambda: set(ask.instances(service, passing=True)) >= set(registered), patience, "every registration passing"
        )
        watch.mark("every registration passing again", key="passing")
        return DrillResult(
            "consul-leader",
            {"patience": patience},
            watch.timeline(),
            {
                "old_leader": leader,
                "new_leader": new,
                "seconds_to_new_leader": watch.first("elected"),
                "kv_survived": survived_kv,
                "registrations_before": len(registered),
                "registrations_after": len(still),
                "recovery_started": summary_recovery,
                "seconds_to_all_passing": watch.first("passing"),
            },
        )
    finally:
        if killed:
            cluster.start(leader)
        watcher.stop()
        try:
            ask.client.kv.delete(key)
        finally:
            ask.close()
