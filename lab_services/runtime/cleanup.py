"""What "reset" undoes besides processes: what lessons left in Consul, etcd and the service instances.

A lesson that was interrupted leaves registrations behind (critical ones, since their instance is gone), KV and etcd
keys it wrote, faults it injected and users it created. `reset()` of a runtime calls `clean_lab_state` after the
processes are back, so the lab then matches a fresh `up`: the lab's own instances stay registered, everything else
a lesson added goes.
"""

from __future__ import annotations

import consul
import pyetcd.exceptions

from lab_services.core.addresses import consul_http_address, etcd_endpoints
from lab_services.core.wait import NOT_YET, wait_for
from lab_services.core.wire import ETCD_SERVICES_PREFIX
from lab_services.registry.etcd import etcd_client
from lab_services.runtime.status import ClusterStatus
from lab_services.service.admin import AdminClient

# Consul's own node-level check: every agent has it, and no lesson may remove it.
_CONSUL_OWN_CHECKS = ("serfHealth",)


def clean_lab_state(status: ClusterStatus) -> list[str]:
    """Remove what lessons added to the running lab (never the lab's own instances' registrations); say what went."""
    own = {s.id for s in status.services}
    steps = _clean_consul(status, own) if status.consul.http else []
    if status.etcd.endpoints:
        steps += _clean_etcd(status, own)
    for service in status.services:
        if service.state == "running":
            try:
                undone = AdminClient(service.admin).reset()
            except OSError as err:  # one instance that cannot answer must not stop the rest of the reset
                steps.append(f"could not reset {service.id} through {service.admin}: {err}")
                continue
            if undone["users_removed"]:
                steps.append(f"emptied {service.id}'s store ({undone['users_removed']} users)")
    return steps


def _clean_consul(status: ClusterStatus, own: set[str]) -> list[str]:
    steps = []
    for http in status.consul.http:
        host, port = consul_http_address(http)
        client = consul.Consul(host=host, port=port)
        try:
            for service_id in client.agent.services():
                if service_id not in own:
                    client.agent.service.deregister(service_id)
                    steps.append(f"deregistered {service_id} from the agent at {http}")
            for check_id, check in client.agent.checks().items():
                if not check.get("ServiceID") and check_id not in _CONSUL_OWN_CHECKS:
                    client.agent.check.deregister(check_id)
                    steps.append(f"deregistered check {check_id} from the agent at {http}")
        finally:
            client.http.session.close()
    host, port = consul_http_address(status.consul.http[0])
    client = consul.Consul(host=host, port=port)
    try:
        _, keys = client.kv.get("", keys=True)
        if keys:  # the lab itself keeps nothing in Consul's KV store: every key there is a lesson's
            client.kv.delete("", recurse=True)
            steps.append(f"deleted {len(keys)} Consul KV key(s)")
    finally:
        client.http.session.close()
    return steps


def _clean_etcd(status: ClusterStatus, own: set[str], timeout: float = 15.0) -> list[str]:
    """Delete every etcd key but the lab's own registrations.

    Retried: right after `restore` restarted two stopped members, the one that stayed up can still answer
    UNAVAILABLE ("no leader") for a moment while the three elect a leader, although the restarted ones report healthy.
    """
    # wait_for wants a truthy answer; the list of steps may be empty, so it is wrapped in a tuple.
    return wait_for(
        lambda: (_delete_stray_etcd_keys(status, own),),
        timeout,
        "etcd to accept the reset's reads",
        interval=0.2,
        not_yet=(*NOT_YET, pyetcd.exceptions.Etcd3Exception),
    )[0]


def _delete_stray_etcd_keys(status: ClusterStatus, own: set[str]) -> list[str]:
    etcd = etcd_client(etcd_endpoints(status.etcd.endpoints), 2.0)
    try:
        prefix = ETCD_SERVICES_PREFIX.rstrip("/") + "/"
        stray = []
        for _, meta in etcd.get_all():
            key = meta.key.decode()
            if not (key.startswith(prefix) and key.rsplit("/", 1)[-1] in own):
                stray.append(key)
        for key in stray:
            etcd.delete(key)
        return (
            [f"deleted {len(stray)} etcd key(s): {', '.join(sorted(stray)[:5])}{' ...' if len(stray) > 5 else ''}"]
            if stray
            else []
        )
    finally:
        etcd.close()
