"""Lesson 12's exercise: from Consul's APIs alone, find the unhealthy instance, the node it lives on, and whether
its node failed (gossip, `serfHealth`) or only the service did (its own check). The checker makes both faults for
real, one after the other, and runs the learner's function during each; `diagnose` is one solution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab_services.core.wait import wait_until
from lab_services.lessons.exercises.verdict import Verdict
from lab_services.lessons.inside_consul import consul_call, instances_on, wait_passing_steadily
from lab_services.runtime.cluster import Cluster

NAME = "12-diagnose"
CAUSES = ("node", "service")


def _critical(address: str, service: str, instances: set[str], check_id: str | None) -> bool:
    entries = consul_call(address, f"/v1/health/service/{service}").body or []
    return any(
        e["Service"]["ID"] in instances
        and any(c["Status"] == "critical" and (check_id is None or c["CheckID"] == check_id) for c in e["Checks"])
        for e in entries
    )


def _judge(
    diagnose: Callable[..., Any], address: str, service: str, node: str, instances: set[str], cause: str
) -> str | None:
    """None when the learner's answer names an instance on `node`, the node, and `cause`; else what is wrong."""
    answer = diagnose(address, service)
    if not isinstance(answer, dict) or set(answer) != {"instance", "node", "cause"}:
        return f"return a dict with the keys instance, node and cause; got {answer!r}"
    if answer["instance"] not in instances:
        return f"instance {answer['instance']!r} is healthy; the unhealthy one is {' or '.join(sorted(instances))}"
    if answer["node"] != node:
        return f"{answer['instance']} lives on {node}, not {answer['node']!r}: read entry['Node']['Node']"
    if answer["cause"] != cause:
        hint = (
            "its own check still says passing but the node's serfHealth is critical"
            if cause == "node"
            else "the node's serfHealth is passing; the critical check is the service's own"
        )
        return f"cause {answer['cause']!r} is wrong when {hint}; use one of {CAUSES}"
    return None


def check(
    diagnose: Any, cluster: Cluster, node: str = "node-1", paused: str = "user-2", service: str = "user"
) -> Verdict:
    """12-diagnose: `diagnose(address, service)` must return {'instance', 'node', 'cause'} ('node' or 'service')."""
    if not callable(diagnose):
        return Verdict(
            NAME,
            False,
            "pass a function diagnose(address, service) -> "
            "{'instance': ..., 'node': ..., 'cause': 'node' or 'service'}",
        )
    server = cluster.status().consul.http[0]
    on_node = set(instances_on(server, service, node))
    if not on_node:
        return Verdict(
            NAME, False, f"no instance of {service} is registered on {node}; run the lesson's set-up cell first"
        )
    cluster.kill(node)  # a node failure: its agent is gone, so nothing reports for its services
    try:
        wait_until(
            lambda: _critical(server, service, on_node, "serfHealth"), 30, f"{node}'s serfHealth to turn critical"
        )
        wrong = _judge(diagnose, server, service, node, on_node, "node")
    finally:
        cluster.start(node)
    if wrong:
        return Verdict(NAME, False, f"with the agent of {node} killed: {wrong}")
    hosts = {e["ServiceID"]: e["Node"] for e in consul_call(server, f"/v1/catalog/service/{service}").body}
    if paused not in hosts:
        return Verdict(
            NAME, False, f"no instance {paused!r} of {service} in the catalog to hang; the instances: {sorted(hosts)}"
        )
    host = hosts[paused]
    # Only one fault at a time: wait until every instance passes steadily again.
    wait_passing_steadily(server, service, set(hosts))
    cluster.pause(paused)  # a service failure: the process hangs, its node's agent is fine and its check times out
    try:
        wait_until(lambda: _critical(server, service, {paused}, None), 30, f"{paused}'s check to turn critical")
        wrong = _judge(diagnose, server, service, host, {paused}, "service")
    finally:
        cluster.resume(paused)
        wait_passing_steadily(server, service, {paused}, hold=1.0)
    if wrong:
        return Verdict(NAME, False, f"with {paused} hung (SIGSTOP): {wrong}")
    return Verdict(
        NAME,
        True,
        f"found the failed node ({node}) through serfHealth and the hung {paused} on {host} through its own check",
    )


def diagnose(address: str, service: str) -> dict[str, str] | None:
    """The first instance with a critical check; serfHealth critical means its node failed, else the service did."""
    for entry in consul_call(address, f"/v1/health/service/{service}").body:
        critical = {c["CheckID"] for c in entry["Checks"] if c["Status"] == "critical"}
        if critical:
            return {
                "instance": entry["Service"]["ID"],
                "node": entry["Node"]["Node"],
                "cause": "node" if "serfHealth" in critical else "service",
            }
    return None


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "`/v1/health/service/<name>` returns one entry per instance with its `Node` and all its `Checks`, the"
        " node's own `serfHealth` included. Look for the entry with a critical check."
    ),
    (
        'In that entry: the instance is `entry["Service"]["ID"]`, the node `entry["Node"]["Node"]`; the cause'
        ' is "node" when a critical check\'s `CheckID` is "serfHealth", else "service".'
    ),
)

SOLUTION = diagnose
