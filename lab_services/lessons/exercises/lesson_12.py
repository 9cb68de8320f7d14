"""Lesson 12's exercise: a prepared query that a client in dc2 can run and still get passing instances from the
first datacenter. The checker runs the learner's definition on dc2's real server; `my_query` is one solution."""
from __future__ import annotations

from typing import Any

from lab_services.lessons.exercises.verdict import Verdict
from lab_services.lessons.inside_consul import datacenters, run_prepared_query

NAME = "12-failover"


def check(definition: Any, dc2: str, service: str = "user") -> Verdict:
    """12-failover: `definition` (a dict, Consul's prepared-query JSON) must answer from the other datacenter."""
    name = NAME
    if not isinstance(definition, dict) or not isinstance(definition.get("Service"), dict):
        return Verdict(name, False, "return a dict like {'Name': ..., 'Service': {'Service': 'user', ...}} "
                                    "(Consul's prepared-query JSON)")
    spec = definition["Service"]
    if spec.get("Service") != service:
        return Verdict(name, False, f"Service.Service is {spec.get('Service')!r}; the query must ask for {service!r}")
    if spec.get("OnlyPassing") is not True:
        return Verdict(name, False, "set Service.OnlyPassing to True: without it instances whose checks are in "
                                    "warning are handed out too")
    try:
        answer = run_prepared_query(dc2, definition)
    except (ValueError, RuntimeError) as err:
        return Verdict(name, False, str(err))
    others = [dc for dc in datacenters(dc2) if dc != answer.datacenter]
    if answer.failovers == 0:
        listed = (spec.get("Failover") or {}).get("Datacenters")
        hint = (f"Service.Failover.Datacenters is {listed!r}; name a datacenter that has {service}: {others}"
                if listed else "add Service.Failover.Datacenters, the datacenters to ask in order when this one has none")
        return Verdict(name, False, f"the query answered from {answer.datacenter} with {len(answer.instances)} instances "
                                    f"and no failover; {hint}")
    if not answer.instances:
        return Verdict(name, False, f"it failed over {answer.failovers} time(s) but found no passing {service} anywhere")
    return Verdict(name, True, f"answered from {answer.datacenter} after {answer.failovers} failover(s) in "
                               f"{answer.ms} ms: {', '.join(answer.instances)}")


def my_query() -> dict[str, Any]:
    """dc2 has no user instances, so the query must go on to the first datacenter, `lab`; only passing ones."""
    return {"Name": "user-nearest", "Service": {"Service": "user", "OnlyPassing": True,
                                                "Failover": {"Datacenters": ["lab"]}}}


SOLUTION = my_query
