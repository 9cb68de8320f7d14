"""etcd members for the local lab: one static cluster on loopback ports."""

from __future__ import annotations

from pathlib import Path

from lab_services.core.errors import BadInputError
from lab_services.core.http import http_json
from lab_services.core.ports import PortAllocator
from lab_services.core.raft import etcd_leader
from lab_services.runtime.nodes import NodeSpec


def plan(count: int, binary: Path, ports: PortAllocator, workdir: Path) -> list[NodeSpec]:
    if count not in (1, 3):
        raise BadInputError(f"invalid argument: etcd_members: {count}; use 1 or 3 (raft needs an odd quorum)")
    nodes = [
        NodeSpec(
            f"etcd-{i}",
            "etcd",
            [],
            {"client": ports.free(2379 if i == 1 else None), "peer": ports.free()},
            host=ports.host,
        )
        for i in range(1, count + 1)
    ]
    initial = ",".join(f"{n.name}=http://{n.addr('peer')}" for n in nodes)
    for node in nodes:
        node.argv = [
            str(binary),
            f"--name={node.name}",
            f"--data-dir={workdir / node.name / 'data'}",
            f"--listen-client-urls=http://{node.addr('client')}",
            f"--advertise-client-urls=http://{node.addr('client')}",
            f"--listen-peer-urls=http://{node.addr('peer')}",
            f"--initial-advertise-peer-urls=http://{node.addr('peer')}",
            f"--initial-cluster={initial}",
            "--initial-cluster-state=new",
            "--initial-cluster-token=discovery-lab",
            # Short heartbeats keep leader loss visible in seconds on one machine.
            "--heartbeat-interval=100",
            "--election-timeout=1000",
            # A lab's keys are throwaway, and every lab on a machine shares its disk: waiting for fsync made single
            # writes take 1-3 s under CI's load ("slow fdatasync" 1.36 s in etcd's log). A killed member still
            # finds its data on restart (the kernel holds it); only a crash of the whole machine loses it.
            "--unsafe-no-fsync",
            "--log-level=info",
        ]
        node.info = {"endpoint": node.addr("client"), "metrics": f"http://{node.addr('client')}/metrics"}
    return nodes


def is_ready(node: NodeSpec) -> bool:
    return http_json(f"http://{node.addr('client')}/health").get("health") == "true"


def leader_name(nodes: list[NodeSpec]) -> str | None:
    """The leader among the live `nodes`, as the members themselves report it."""
    return etcd_leader({node.name: node.addr("client") for node in nodes})


def version(node: NodeSpec) -> str:
    return http_json(f"http://{node.addr('client')}/version").get("etcdserver", "")
