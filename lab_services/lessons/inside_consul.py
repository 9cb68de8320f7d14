"""Lesson 12's experiments inside Consul: agents and nodes, gossip failure detection, anti-entropy, read
consistency and a second datacenter, each measured against the lab's real agents.

Every function reads Consul's HTTP API directly (not py-consul) because the lesson shows what the client
libraries hide: the `X-Consul-KnownLeader` and `X-Consul-LastContact` headers, status codes and error bodies.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab_services.core.table import Table
from lab_services.core.wait import wait_for, wait_until
from lab_services.lessons.measured import Expected, compare
from lab_services.runtime import binaries
from lab_services.runtime.cluster import Cluster

READ_MODES = ("stale", "default", "consistent")
SETTLE_SECONDS = 6.0  # above the registrar's 5 s backoff cap (see wait_passing_steadily)


@dataclass(frozen=True)
class ConsulAnswer:
    """One HTTP answer from an agent: status (0 when nothing answered), decoded body, headers, and how long it took."""

    status: int
    body: Any
    headers: dict[str, str]
    seconds: float

    @property
    def known_leader(self) -> bool | None:
        value = self.headers.get("X-Consul-Knownleader")
        return None if value is None else value == "true"

    @property
    def last_contact_ms(self) -> int | None:
        value = self.headers.get("X-Consul-Lastcontact")
        return None if value is None else int(value)


def consul_call(address: str, path: str, method: str = "GET", data: Any = None, timeout: float = 15.0) -> ConsulAnswer:
    """`method path` on the agent at `address` (host:port); HTTP errors come back as answers, never raised."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(f"http://{address}{path}", data=body, method=method)
    began = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw, status, headers = resp.read(), resp.status, dict(resp.headers)
    except urllib.error.HTTPError as err:
        raw, status, headers = err.read(), err.code, dict(err.headers)
    except OSError as err:
        return ConsulAnswer(0, str(err), {}, time.monotonic() - began)
    took = time.monotonic() - began
    try:
        decoded = json.loads(raw) if raw else None
    except ValueError:
        decoded = raw.decode(errors="replace").strip()
    return ConsulAnswer(status, decoded, {k.title(): v for k, v in headers.items()}, took)


def _ok(answer: ConsulAnswer, what: str) -> Any:
    if answer.status != 200:
        raise RuntimeError(f"{what}: Consul answered {answer.status}: {answer.body}")
    return answer.body


# -- agents, nodes, services ---------------------------------------------------------------------------------
def members(address: str) -> Table:
    """The LAN gossip pool as this agent sees it (`/v1/agent/members`): who is a server, who a client, who is alive."""
    status_names = {0: "none", 1: "alive", 2: "leaving", 3: "left", 4: "failed"}
    rows = [
        {
            "node": m["Name"],
            "address": f"{m['Addr']}:{m['Port']}",
            "role": "server" if m["Tags"].get("role") == "consul" else "client",
            "datacenter": m["Tags"].get("dc"),
            "gossip status": status_names.get(m["Status"], m["Status"]),
        }
        for m in _ok(consul_call(address, "/v1/agent/members"), "members")
    ]
    return Table(sorted(rows, key=lambda r: (r["role"], r["node"])))


def nodes_and_services(address: str) -> Table:
    """The catalog's nodes (`/v1/catalog/nodes`), each with the services registered on it and its serfHealth check."""
    rows = []
    for node in _ok(consul_call(address, "/v1/catalog/nodes"), "catalog nodes"):
        name = node["Node"]
        services = _ok(consul_call(address, f"/v1/catalog/node/{name}"), f"node {name}")["Services"] or {}
        checks = {
            c["CheckID"]: c["Status"]
            for c in _ok(consul_call(address, f"/v1/health/node/{name}"), f"node {name} health")
        }
        rows.append(
            {
                "node": name,
                "address": node["Address"],
                "services": ", ".join(sorted(services)) or "-",
                "serfHealth": checks.get("serfHealth", "-"),
            }
        )
    return Table(rows)


def instances_on(address: str, service: str, node: str) -> list[str]:
    """The instances of `service` registered on `node` (through that node's agent), as the catalog says."""
    entries = _ok(consul_call(address, f"/v1/catalog/service/{service}"), f"catalog service {service}")
    return sorted(e["ServiceID"] for e in entries if e["Node"] == node)


def _passing(address: str, service: str) -> set[str]:
    return {e["Service"]["ID"] for e in _ok(consul_call(address, f"/v1/health/service/{service}?passing"), "health")}


# -- gossip: a node fails --------------------------------------------------------------------------------------
def node_failure(
    cluster: Cluster, node: str, service: str = "user", timeout: float = 30.0, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """kill -9 the client agent `node` and time what follows, then start it again and time the way back.

    The instances on that node keep running: nothing checks them any more, so the servers learn of the loss
    only through gossip, when the other members' probes of the node fail and serf marks it failed.
    """
    server = cluster.status().consul.http[0]
    on_node = set(instances_on(server, service, node))
    if not on_node:
        raise ValueError(f"invalid argument: node: no instance of {service!r} is registered on {node!r}")
    killed_at = time.monotonic()
    cluster.kill(node)
    progress(f"killed the agent of {node} (kill -9); waiting for serfHealth to turn critical")
    try:
        wait_until(lambda: _serf_status(server, node) == "critical", timeout, f"serfHealth of {node} to turn critical")
        serf = time.monotonic() - killed_at
        wait_until(lambda: not (on_node & _passing(server, service)), timeout, f"{sorted(on_node)} to leave ?passing")
        gone = time.monotonic() - killed_at
        checks = {c["CheckID"]: c["Status"] for c in _ok(consul_call(server, f"/v1/health/node/{node}"), "node health")}
        # The leader's serfHealth can turn critical before the server we ask has marked the member failed in its
        # own member list (each server's serf hears of the failure on its own), so wait for that view too.
        member = wait_for(
            lambda: _member_status_unless_alive(server, node), timeout, f"{server} to list {node} as no longer alive"
        )
        running = {p.name: p.state for p in cluster.status().processes_of("service").values() if p.name in on_node}
    finally:
        progress(f"starting the agent of {node} again")
        restarted_at = time.monotonic()
        cluster.start(node)
    back = wait_passing_steadily(server, service, on_node, timeout=timeout)
    return {
        "node": node,
        "instances on it": sorted(on_node),
        "instance processes while down": running,
        "gossip status while down": "failed" if member == 4 else member,
        "checks while down": checks,
        "seconds to serfHealth critical": round(serf, 2),
        "seconds to leave ?passing": round(gone, 2),
        "seconds from restart to passing": round(back - restarted_at, 2),
    }


def _member_status_unless_alive(server: str, node: str) -> int | None:
    """Serf's status of `node` in the members list of the agent at `server` (3 left, 4 failed); None while it is
    still alive (1) there, or not listed."""
    status = {m["Name"]: m["Status"] for m in _ok(consul_call(server, "/v1/agent/members"), "members")}.get(node)
    return None if status == 1 else status


def wait_passing_steadily(
    address: str, service: str, instances: set[str], hold: float = SETTLE_SECONDS, timeout: float = 30.0
) -> float:
    """Wait until `instances` have passed for `hold` seconds in a row; returns the monotonic time they began to.

    A restarted agent brings back its services with their last status at once, but each instance's own
    registrar, which lost its agent meanwhile, registers again within its backoff (at most 5 s), and that
    new registration restarts the check as critical for a moment. Waiting out the backoff keeps one
    experiment's recovery from leaking into the next.
    """
    since: list[float] = []

    def steady() -> bool:
        if not instances <= _passing(address, service):
            since.clear()
            return False
        since[:] = since or [time.monotonic()]
        return time.monotonic() - since[0] >= hold

    wait_until(steady, timeout + hold, f"{sorted(instances)} to pass for {hold} s in a row", interval=0.1)
    return since[0]


def _serf_status(address: str, node: str) -> str | None:
    checks = _ok(consul_call(address, f"/v1/health/node/{node}"), f"health of {node}")
    return next((c["Status"] for c in checks if c["CheckID"] == "serfHealth"), None)


def agent_address(cluster: Cluster, node: str) -> str:
    """The HTTP address of the client agent `node` (its own loopback address and its HTTP port)."""
    status = cluster.status()
    for address in status.consul.clients:
        if consul_call(address, "/v1/agent/self").body.get("Config", {}).get("NodeName") == node:
            return address
    raise KeyError(
        f"no client agent named {node!r}; the lab's client agents: {', '.join(status.consul.clients) or 'none'}"
    )


# -- read consistency ------------------------------------------------------------------------------------------
def read_modes(address: str, path: str = "/v1/catalog/service/user", timeout: float = 15.0) -> Table:
    """The same read in each consistency mode, against the agent at `address`, with what its headers say."""
    rows = []
    for mode in READ_MODES:
        query = "" if mode == "default" else f"{'&' if '?' in path else '?'}{mode}"
        answer = consul_call(address, path + query, timeout=timeout)
        rows.append(
            {
                "mode": mode,
                "status": answer.status,
                "ms": round(answer.seconds * 1000, 1),
                "X-Consul-KnownLeader": answer.known_leader,
                "X-Consul-LastContact (ms)": answer.last_contact_ms,
                "answer": f"{len(answer.body)} entries" if isinstance(answer.body, list) else str(answer.body)[:60],
            }
        )
    return Table(rows)


RAFT_TIMEOUTS = (
    ("election", "ConsulRaftElectionTimeout"),
    ("heartbeat", "ConsulRaftHeartbeatTimeout"),
    ("leader lease", "ConsulRaftLeaderLeaseTimeout"),
)


def raft_timing(address: str) -> Table:
    """The Raft timeouts the server at `address` runs with, from its own `/v1/agent/self`: `raft_multiplier` scales
    all three (1 s, 1 s and 500 ms at 1; five times that at Consul's default 5)."""
    config = consul_call(address, "/v1/agent/self").body["DebugConfig"]
    return Table([{"timeout": name, "value": config[key]} for name, key in RAFT_TIMEOUTS], ["timeout", "value"])


def reads_without_quorum(
    cluster: Cluster, path: str = "/v1/catalog/service/user", progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """Pause the leader and one follower, read in each mode from the follower left alone, then resume both.

    The lone follower still holds its copy of the catalog: a `?stale` read answers from it (KnownLeader false,
    LastContact growing), while default and `?consistent` reads must reach a leader and wait for one.
    """
    status = cluster.status()
    servers = status.processes_of("consul")
    if len(servers) < 3 or not status.consul.leader:
        raise ValueError("invalid argument: the lab needs three Consul servers and a leader for this experiment")
    followers = sorted(n for n in servers if n != status.consul.leader)
    alone, paused = followers[0], [status.consul.leader, followers[1]]
    address = servers[alone].address("http")
    before = read_modes(address, path)
    for name in paused:
        cluster.pause(name)
    progress(f"paused {', '.join(paused)}; reading from {alone} alone")
    try:
        # Reads start once the follower itself has noticed: its raft heartbeat times out about a second later.
        stale = f"{path}{'&' if '?' in path else '?'}stale"
        wait_until(lambda: consul_call(address, stale).known_leader is False, 15, f"{alone} to notice it has no leader")
        during = read_modes(address, path)
    finally:
        for name in paused:
            cluster.resume(name)
        progress(f"resumed {', '.join(paused)}")
    # Every server, not just the lone follower: the resumed old leader learns of the new term a moment later.
    addresses = [servers[name].address("http") for name in sorted(servers)]
    wait_until(lambda: _one_leader(addresses), 30, "every Consul server to name the same leader again")
    return {"follower": alone, "paused": paused, "before": before, "during": during}


def _one_leader(addresses: list[str]) -> bool:
    leaders = {consul_call(address, "/v1/status/leader").body for address in addresses}
    return len(leaders) == 1 and leaders.pop() not in ("", None)


# -- anti-entropy ------------------------------------------------------------------------------------------------
class AntiEntropyWatch:
    """Delete one instance from the catalog behind its agent's back, and time how long until the agent puts it back.

    The agent still holds the registration (`/v1/agent/services` on its node); the catalog is what clients read.
    The agent compares the two at its periodic full sync (one minute plus a random stagger of up to one more, in a
    cluster this small) and writes its own view back. `consul reload` brings it back sooner by another way: see
    `reload_log`.
    """

    def __init__(self, server: str, agent: str, node: str, service: str, instance: str):
        self.server, self.agent, self.node, self.service, self.instance = server, agent, node, service, instance
        self.removed_at: float | None = None
        self.restored_after: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def in_catalog(self) -> bool:
        entries = _ok(consul_call(self.server, f"/v1/catalog/service/{self.service}"), "catalog")
        return any(e["ServiceID"] == self.instance for e in entries)

    def in_agent(self) -> bool:
        return self.instance in (_ok(consul_call(self.agent, "/v1/agent/services"), "agent services") or {})

    def start(self) -> AntiEntropyWatch:
        _ok(
            consul_call(self.server, "/v1/catalog/deregister", "PUT", {"Node": self.node, "ServiceID": self.instance}),
            f"deregistering {self.instance} from the catalog",
        )
        self.removed_at = time.monotonic()
        self._thread = threading.Thread(target=self._watch, name="anti-entropy-watch", daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            if self.in_catalog():
                self.restored_after = time.monotonic() - self.removed_at
                return

    def wait(self, timeout: float = 120.0, progress: Callable[[str], None] = print) -> float:
        """Seconds from the removal to the agent's repair; prints a line every 10 s while it waits."""
        deadline = time.monotonic() + timeout
        try:
            while self._thread.is_alive() and time.monotonic() < deadline:
                self._thread.join(10)
                if self._thread.is_alive():
                    progress(
                        f"{time.monotonic() - self.removed_at:.0f} s since the removal; {self.instance} not back yet"
                    )
        finally:
            self._stop.set()
        if self.restored_after is None:
            raise TimeoutError(f"{self.instance} was not back in the catalog {timeout:.0f} s after its removal")
        return round(self.restored_after, 2)


def consul_reload(agent: str) -> str:
    """`consul reload` against one agent, as an operator would run it."""
    return binaries.run_tool("consul", ["reload", f"-http-addr=http://{agent}"])


# What a reload does to a service and what a sync then does with it, as the agent logs them.
RELOAD_WORDS = ("removed", "restored", "Synced", "in sync")


def reload_log(agent: str, instance: str, window: float = 3.0) -> list[str]:
    """`consul reload` on `agent` while following its log at debug level (`/v1/agent/monitor?loglevel=debug`, the
    agent's own stream, whatever level its log file has): the lines about `instance` (and the sync's node line) that
    the agent wrote in the `window` seconds after, which say what the reload did and which sync wrote what."""
    lines: list[str] = []
    started = threading.Event()

    def follow() -> None:
        request = urllib.request.Request(f"http://{agent}/v1/agent/monitor?loglevel=debug")
        with urllib.request.urlopen(request, timeout=window + 5) as stream:
            started.set()
            deadline = time.monotonic() + window
            while time.monotonic() < deadline:
                line = stream.readline().decode(errors="replace").split("] ", 1)[-1].strip()
                if (
                    line.startswith("agent: ")
                    and any(word in line for word in RELOAD_WORDS)
                    and (instance in line or "Node info" in line)
                ):
                    lines.append(line)

    follower = threading.Thread(target=follow, name="consul-monitor", daemon=True)
    follower.start()
    started.wait(5)
    time.sleep(0.3)  # the monitor is attached once its response has started; give it a moment to register
    consul_reload(agent)
    follower.join(window + 6)
    return lines


# -- two datacenters -------------------------------------------------------------------------------------------
def datacenters(address: str) -> list[str]:
    """Every datacenter this agent's servers know over the WAN, nearest first (`/v1/catalog/datacenters`)."""
    return _ok(consul_call(address, "/v1/catalog/datacenters"), "datacenters")


def instances_in(address: str, service: str, dc: str | None = None) -> Table:
    """The passing instances of `service` in datacenter `dc`, asked through the agent at `address` (`?dc=`)."""
    answer = consul_call(address, f"/v1/health/service/{service}?passing" + (f"&dc={dc}" if dc else ""))
    entries = _ok(answer, f"health of {service} in {dc or 'the local datacenter'}")
    return Table(
        [
            {
                "instance": e["Service"]["ID"],
                "node": e["Node"]["Node"],
                "datacenter": e["Node"]["Datacenter"],
                "address": f"{e['Service']['Address']}:{e['Service']['Port']}",
                "ms": round(answer.seconds * 1000, 1),
            }
            for e in entries
        ]
    )


@dataclass(frozen=True)
class QueryAnswer:
    """What executing a prepared query returned: where the answer came from, and the query as Consul stored it."""

    datacenter: str
    failovers: int
    instances: list[str]
    ms: float
    stored: dict[str, Any] = field(default_factory=dict)


def run_prepared_query(address: str, definition: dict[str, Any]) -> QueryAnswer:
    """Create `definition` on the agent's datacenter, execute it once, delete it; Consul's refusal raises ValueError."""
    created = consul_call(address, "/v1/query", "POST", definition)
    if created.status != 200:
        raise ValueError(f"Consul refused the prepared query ({created.status}): {created.body}")
    query_id = created.body["ID"]
    try:
        stored = _ok(consul_call(address, f"/v1/query/{query_id}"), "reading the query back")[0]
        answer = consul_call(address, f"/v1/query/{query_id}/execute")
        result = _ok(answer, "executing the prepared query")
    finally:
        consul_call(address, f"/v1/query/{query_id}", "DELETE")
    return QueryAnswer(
        result["Datacenter"],
        result["Failovers"],
        sorted(n["Service"]["ID"] for n in result["Nodes"] or []),
        round(answer.seconds * 1000, 1),
        stored,
    )


# -- what the learner's run measured ---------------------------------------------------------------------------
_LOADED = "the machine is loaded (another notebook, a test run), so probes, timers and requests run late"
GOSSIP = Expected(
    "section 2: kill -9 of a node's agent to serfHealth critical",
    "s",
    4,
    15,
    "faster than memberlist's 4 s minimum suspicion timeout: the agent left gracefully (stopped, not killed)",
    "few members confirmed the suspicion, whose timeout starts at 24 s and shrinks with each confirmation; or "
    + _LOADED,
)
LEAVE_PASSING = Expected(
    "section 2: kill -9 of a node's agent to its instances out of ?passing",
    "s",
    4,
    15,
    "the instances left before the node failed: their own checks failed, not the node",
    GOSSIP.above,
)
FULL_SYNC = Expected(
    "section 3: catalog removal to repair, the agent's periodic full sync",
    "s",
    0,
    120,
    "",
    "the agent missed its 1-2 minute sync: it could not reach a server, or it was restarted (a new stagger)",
)
RELOAD = Expected(
    "section 3: catalog removal to repair, consul reload",
    "s",
    0,
    3,
    "",
    "the reload did not re-add the service; if the log above has no 'Synced service', the periodic sync repaired it",
)
FAILOVER = Expected(
    "section 4: prepared query from dc2, answered by lab",
    "ms",
    0,
    100,
    "",
    _LOADED + "; across real sites the WAN round trip adds tens to hundreds of ms",
)
STALE = Expected("section 5: ?stale read from the lone follower", "ms", 0, 50, "", "the follower was busy; " + _LOADED)
NO_LEADER = Expected(
    "section 5: default read from the lone follower, until it failed",
    "s",
    6.5,
    8.5,
    "refused before Consul's 7 s RPC hold ran out: read the answer column of the table in section 5",
    "the follower held the request past its 7 s hold: " + _LOADED,
)


def what_you_saw(
    failure: dict[str, Any],
    anti_entropy_seconds: float,
    reload_seconds: float,
    with_failover: QueryAnswer,
    stale_row: dict[str, dict[str, Any]],
) -> Table:
    """Lesson 12's figures from this run, section by section, beside the ranges the lab expects and what a figure
    outside one means."""
    return compare(
        [
            (GOSSIP, failure["seconds to serfHealth critical"]),
            (LEAVE_PASSING, failure["seconds to leave ?passing"]),
            (FULL_SYNC, anti_entropy_seconds),
            (RELOAD, reload_seconds),
            (FAILOVER, with_failover.ms),
            (STALE, stale_row["stale"]["ms"]),
            (NO_LEADER, stale_row["default"]["ms"] / 1000),
        ]
    )
