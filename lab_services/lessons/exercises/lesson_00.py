"""Lesson 00's exercise: read the cluster's shape through Consul's and etcd's own APIs, no lab wrapper in between.

The learner writes `cluster_shape(consul_client, etcd_client)` returning a dict with the Consul Raft leader and
peers (`/v1/status/leader`, `/v1/status/peers`), the Consul members (`/v1/agent/members`, gossip), and the etcd
leader and members (the Maintenance Status and Cluster MemberList RPCs). The checker asks the same servers and
names every field that differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import consul

from lab_services.core import addresses
from lab_services.lessons.exercises.verdict import Verdict
from lab_services.registry.etcd import etcd_client

NAME = "00-shape"
FIELDS = {
    "consul_leader": "the Raft address of the Consul leader, e.g. '127.0.0.1:8300' (client.status.leader())",
    "consul_peers": "the sorted Raft addresses of the Consul servers (client.status.peers())",
    "consul_members": "the sorted names of the agents gossip knows (client.agent.members())",
    "etcd_leader": "the name of the etcd leader (etcd.status().leader.name)",
    "etcd_members": "the sorted names of the etcd members (etcd.members)",
}


def check(shape_of: Callable[[Any, Any], Any], consul_http: str, etcd_endpoints: list[str]) -> Verdict:
    """00-shape: `shape_of(consul_client, etcd_client)` returns a dict with the five FIELDS, read from the servers."""
    if not callable(shape_of):
        return Verdict(NAME, False, "define cluster_shape(consul_client, etcd_client) and pass it to the checker")
    host, port = addresses.consul_http_address(consul_http)
    client = consul.Consul(host=host, port=port)
    etcd = etcd_client(addresses.etcd_endpoints(etcd_endpoints, "etcd_endpoints"), 2.0)
    try:
        answer = shape_of(client, etcd)
        if not isinstance(answer, dict):
            return Verdict(
                NAME, False, f"cluster_shape returned {answer!r}; return a dict with the keys {', '.join(FIELDS)}"
            )
        missing = [f for f in FIELDS if f not in answer]
        if missing:
            return Verdict(NAME, False, "missing " + "; ".join(f"{f}: {FIELDS[f]}" for f in missing))
        truth = read_shape(client, etcd)
        wrong = [f"{f} is {answer[f]!r}, the servers say {truth[f]!r}" for f in FIELDS if answer[f] != truth[f]]
        if wrong:
            return Verdict(NAME, False, "; ".join(wrong))
        return Verdict(
            NAME,
            True,
            f"Consul: leader {truth['consul_leader']} of {len(truth['consul_peers'])} Raft peers, "
            f"{len(truth['consul_members'])} gossip members; etcd: leader {truth['etcd_leader']} of "
            f"{len(truth['etcd_members'])} members",
        )
    finally:
        client.http.session.close()
        etcd.close()


def read_shape(client: consul.Consul, etcd: Any) -> dict[str, Any]:
    """The cluster's shape as Consul and etcd report it: leaders, Raft peers and members of each."""
    return {
        "consul_leader": client.status.leader(),
        "consul_peers": sorted(client.status.peers()),
        "consul_members": sorted(m["Name"] for m in client.agent.members()),
        "etcd_leader": etcd.status().leader.name,
        "etcd_members": sorted(m.name for m in etcd.members),
    }


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "Each field is one call on a client the checker hands you: py-consul's `consul_client.status` and "
        "`consul_client.agent`, pyetcd's `etcd_client.status()` and `etcd_client.members`. Print what each "
        "returns before you pick from it."
    ),
    (
        "`status.leader()` and `status.peers()` already return 'host:port' strings (sort the peers); "
        "`agent.members()` returns dicts, keep each `['Name']`; `etcd_client.status().leader.name` names the "
        "leader, and every member in `etcd_client.members` has a `.name`. Sort both lists of names."
    ),
)

SOLUTION = read_shape
