"""Who leads a Consul or etcd raft cluster, asked of the members themselves (the runtime's status and the drills)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from lab_services.core.etcd_gateway import EtcdGateway
from lab_services.core.http import http_json


class ConsulServer(NamedTuple):
    """A Consul server's HTTP API address and its raft (server RPC) address, which is how leaders are named."""

    http: str
    server: str


def consul_leader(
    servers: Mapping[str, ConsulServer], ask: Iterable[str] | None = None, timeout: float = 1.0
) -> str | None:
    """The name of the leader among `servers` as the first of `ask` (default: all) that answers sees it; None if none.

    Consul answers `/v1/status/leader` with the leader's raft address, so it is matched back to a name among all
    `servers`: a server that just rejoined may be asked alone, and names another as leader.
    """
    by_address = {server.server: name for name, server in servers.items()}
    for server in (servers[name] for name in (ask if ask is not None else servers)):
        try:
            address = http_json(f"http://{server.http}/v1/status/leader", timeout=timeout)
        except (OSError, ValueError):
            continue
        return by_address.get(address) if address else None
    return None


def etcd_leader(endpoints: Mapping[str, str], timeout: float = 1.0) -> str | None:
    """The name of the leader among members `{name: endpoint}`, asking each; None while there is none.

    A member that still names a dead leader (or one not asked) does not count as an answer yet.
    """
    ids: dict[str, str] = {}
    leader_id = None
    for name, endpoint in endpoints.items():
        try:
            answer = EtcdGateway(endpoint, timeout).status()
        except (OSError, ValueError):
            continue
        ids[answer["header"]["member_id"]] = name
        leader_id = answer.get("leader") or leader_id
    return ids.get(leader_id) if leader_id else None
