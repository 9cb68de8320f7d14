"""Instances of the sample user service, registered in Consul and etcd the way the lessons expect."""

from __future__ import annotations

from lab_services.core.errors import BadInputError
from lab_services.core.etcd_gateway import EtcdGateway
from lab_services.core.http import http_get, http_json
from lab_services.core.ports import PortAllocator
from lab_services.core.wire import ETCD_SERVICES_PREFIX
from lab_services.runtime.nodes import NodeSpec
from lab_services.service.command import ServiceCommand


def own_address(index: int) -> str:
    """Instance i on 127.0.0.(10+i): Consul DNS A records carry no port, so a `dns://` client needs one address
    per instance and a port they share (docs/architecture.md)."""
    if not 1 <= index <= 240:
        raise BadInputError(f"invalid argument: services: instance {index} has no own loopback address (at most 240)")
    return f"127.0.0.{10 + index}"


def plan(
    index: int,
    ports: PortAllocator,
    name: str,
    registry: str,
    consul: list[NodeSpec],
    etcd: list[NodeSpec],
    checks: tuple[str, ...] = ("grpc",),
    version: str = "v1",
    shared_port: int | None = None,
    meta: dict[str, str] | None = None,
    options: list[str] | None = None,
) -> NodeSpec:
    """One instance; with `shared_port` it gets its own loopback address and that port, else 127.0.0.1 and a free one.
    `options` are further flags of the service (TLS, config store)."""
    instance = f"{name}-{index}"
    if shared_port:
        node = NodeSpec(instance, "service", [], {"grpc": shared_port, "http": ports.free()}, host=own_address(index))
    else:
        node = NodeSpec(
            instance, "service", [], {"grpc": ports.free(5000 + index), "http": ports.free()}, host=ports.host
        )
    node.argv = ServiceCommand(
        host=node.host,
        port=node.ports["grpc"],
        http_port=node.ports["http"],
        name=name,
        instance_id=instance,
        registry=registry if (consul or etcd) else "none",
        version=version,
        meta=meta or {},
        consul=consul[0].addr("http") if consul else None,
        etcd=[n.addr("client") for n in etcd],
        checks=checks,
        options=options or [],
    ).argv()
    node.info = info(node, name, version)
    return node


def info(node: NodeSpec, service: str, version: str) -> dict[str, str]:
    """What the status reports of an instance besides its ports (both runtimes build it here)."""
    return {
        "service": service,
        "version": version,
        "address": node.addr("grpc"),
        "metrics_url": f"http://{node.addr('http')}/metrics",
        "admin": node.addr("http"),
    }


def is_serving(node: NodeSpec) -> bool:
    return http_get(f"http://{node.addr('http')}/health")[0] == 200


def is_passing_in_consul(node: NodeSpec, consul: NodeSpec) -> bool:
    """Passing at the agent it registered with (its `--consul`) and in the catalog, which is what clients read (asked
    of `consul`). The agent's view
    comes first: after a whole lab stopped, the catalog may still hold the instance's old, passing entry until the
    agent's next sync, while the agent already knows the new registration is not checked yet."""
    agent = node.argv[node.argv.index("--consul") + 1] if "--consul" in node.argv else consul.addr("http")
    checks = [c for c in http_json(f"http://{agent}/v1/agent/checks").values() if c["ServiceID"] == node.name]
    if not checks or any(c["Status"] != "passing" for c in checks):
        return False
    entries = http_json(f"http://{consul.addr('http')}/v1/health/service/{node.info['service']}?passing")
    return any(entry["Service"]["ID"] == node.name for entry in entries)


def is_registered_in_etcd(node: NodeSpec, member: NodeSpec, prefix: str = ETCD_SERVICES_PREFIX) -> bool:
    """The instance's key exists (asked through etcd's JSON gateway on one member; a dead member answers no)."""
    try:
        return EtcdGateway(member.addr("client")).count(f"{prefix}/{node.info['service']}/{node.name}") > 0
    except OSError:
        return False
