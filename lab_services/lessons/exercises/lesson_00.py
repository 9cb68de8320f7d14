"""Lesson 00's exercise: name the Consul leader. The checker says right or wrong and why; `leader_name` is one solution."""
from __future__ import annotations

from typing import Any

from lab_services.lessons.exercises.verdict import Verdict
from lab_services.runtime.cluster import Cluster

NAME = "00-leader"


def check(answer: Any, cluster: Cluster) -> Verdict:
    """00-leader: `answer` is the process name of the Consul server that leads right now."""
    leader = cluster.status().consul.leader
    if answer is None or answer is Ellipsis:
        return Verdict(NAME, False, "set `answer` to a process name such as 'consul-2'")
    if answer != leader:
        return Verdict(NAME, False, f"{answer!r} is not the leader; look for the ★ in the overview, or at status().consul")
    return Verdict(NAME, True, f"{leader} leads the Consul servers; the others forward writes to it")


def leader_name(cluster: Cluster) -> str | None:
    """`answer` in lesson 00: the process name of the Consul server that leads right now."""
    return cluster.status().consul.leader


SOLUTION = leader_name
