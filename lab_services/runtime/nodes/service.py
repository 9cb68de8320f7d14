"""Instances of the sample user service, registered in Consul and etcd the way the lessons expect."""

from __future__ import annotations

import sys

from lab_services.core.etcd_gateway import EtcdGateway
from lab_services.core.http import http_get, http_json
from lab_services.core.ports import PortAllocator
from lab_services.core.wire import ETCD_SERVICES_PREFIX
from lab_services.runtime.nodes import NodeSpec


def own_address(index: int) -> str:
    """Instance i on 127.0.0.(10+i): Consul DNS A records carry no port, so a `dns://` client needs one address
    per instance and a port they share (docs/architecture.md)."""
    if not 1 <= index <= 240:
        raise ValueError(f"invalid argument: services: instance {index} has no own loopback address (at most 240)")
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
    tls: list[str] | None = None,
    config: list[str] | None = None,
) -> NodeSpec:
    """One instance; with `shared_port` it gets its own loopback address and that port, else 127.0.0.1 and a free one."""
    instance = f"{name}-{index}"
    if shared_port:
        node = NodeSpec(instance, "service", [], {"grpc": shared_port, "http": ports.free()}, host=own_address(index))
    else:
        node = NodeSpec(
            instance, "service", [], {"grpc": ports.free(5000 + index), "http": ports.free()}, host=ports.host
        )
    argv = [
        sys.executable,
        "-m",
        "lab_services.service",
        "--host",
        node.host,
        "--port",
        str(node.ports["grpc"]),
        "--http-port",
        str(node.ports["http"]),
        "--name",
        name,
        "--id",
        instance,
        "--tags",
        version,
        "--meta",
        f"version={version}",
        "--registry",
        registry if (consul or etcd) else "none",
    ]
    for key, value in (meta or {}).items():
        argv += ["--meta", f"{key}={value}"]
    argv += tls or []
    argv += config or []
    if consul:
        argv += ["--consul", consul[0].addr("http")]
    if etcd:
        argv += ["--etcd", ",".join(n.addr("client") for n in etcd)]
    for check in checks:
        argv += ["--check", check]
    node.argv = argv
    node.info = {
        "service": name,
        "version": version,
        "address": node.addr("grpc"),
        "metrics_url": f"http://{node.addr('http')}/metrics",
        "admin": node.addr("http"),
    }
    return node


def is_serving(node: NodeSpec) -> bool:
    return http_get(f"http://{node.addr('http')}/health")[0] == 200


def is_passing_in_consul(node: NodeSpec, consul: NodeSpec) -> bool:
    """Passing in the catalog, which is what clients read; the agent's own view is a few milliseconds ahead."""
    entries = http_json(f"http://{consul.addr('http')}/v1/health/service/{node.info['service']}?passing")
    return any(entry["Service"]["ID"] == node.name for entry in entries)


def is_registered_in_etcd(node: NodeSpec, member: NodeSpec, prefix: str = ETCD_SERVICES_PREFIX) -> bool:
    """The instance's key exists (asked through etcd's JSON gateway on one member; a dead member answers no)."""
    try:
        return EtcdGateway(member.addr("client")).count(f"{prefix}/{node.info['service']}/{node.name}") > 0
    except OSError:
        return False
