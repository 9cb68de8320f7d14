"""What "ready" means for each kind of lab node, the same on both runtimes: ask the server, never sleep."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from lab_services.core.http import http_json
from lab_services.core.wait import WaitTimeout, wait_until
from lab_services.runtime.cluster import NotReadyError
from lab_services.runtime.nodes import NodeSpec, consul, etcd, prometheus, service


def ready_check(
    node: NodeSpec, nodes: Iterable[NodeSpec], registry: str, agent: NodeSpec | None = None
) -> Callable[[], bool]:
    """Consul (server or client agent): a raft leader in sight; etcd: healthy; Prometheus: ready; a service:
    serving and listed in every registry it registers with (passing in the catalog, read from `agent` or else
    consul-1, and its key in etcd)."""
    if node.kind in ("consul", consul.CLIENT_KIND, consul.SECOND_DC_KIND):
        return lambda: consul.is_ready(node)
    if node.kind == "etcd":
        return lambda: etcd.is_ready(node)
    if node.kind == "prometheus":
        return lambda: prometheus.is_ready(node)
    nodes = list(nodes)
    agent = agent or next((n for n in nodes if n.name == "consul-1"), None)
    members = [n for n in nodes if n.kind == "etcd"]
    in_consul = bool(agent) and registry in ("consul", "both")
    in_etcd = bool(members) and registry in ("etcd", "both")
    return lambda: (
        service.is_serving(node)
        and (not in_consul or service.is_passing_in_consul(node, agent))
        and (not in_etcd or any(service.is_registered_in_etcd(node, m) for m in members))
    )


def wait_all_passing(agent: NodeSpec, services: list[NodeSpec], timeout: float) -> float:
    """Poll until the catalog (asked of `agent`) lists every one of `services` as passing at the same moment, each
    once: an instance moved off an agent that is going away is listed twice until that agent has left.

    Each instance's own readiness can be met by a catalog entry its agent is about to replace: after a killed engine,
    an agent restores its instances' last registrations and syncs its new ones only when a leader takes them (a
    failed sync is retried about 15 s later), so one instance could leave `?passing` after it counted as ready."""
    names = sorted(n.name for n in services)

    def passing() -> list[str]:
        found: list[str] = []
        for name in {n.info["service"] for n in services}:
            entries = http_json(f"http://{agent.addr('http')}/v1/health/service/{name}?passing")
            found += [e["Service"]["ID"] for e in entries if e["Service"]["ID"] in names]
        return sorted(found)

    try:
        return wait_until(
            lambda: passing() == names, timeout, f"{', '.join(names)} to pass in the catalog together, each once"
        )
    except WaitTimeout as err:
        raise NotReadyError(f"{err}; passing now: {sorted(passing())}") from None


def wait_ready(
    node: NodeSpec,
    check: Callable[[], bool],
    exit_code: Callable[[], int | None],
    tail: Callable[[], str],
    log_name: str,
    timeout: float,
) -> float:
    """Poll `check` until `node` is ready; the seconds it took. NotReadyError, with the last lines of its log,
    as soon as it exits (`exit_code` is not None) or when `timeout` passes: on either runtime the same words."""

    def ready() -> bool:
        code = exit_code()
        if code is not None:
            raise NotReadyError(f"{node.name} exited with code {code}:\n{tail()}")
        return check()

    try:
        return wait_until(ready, timeout, f"{node.name} to be ready")
    except WaitTimeout as err:
        raise NotReadyError(f"{err}; last lines of {log_name}:\n{tail()}") from None
