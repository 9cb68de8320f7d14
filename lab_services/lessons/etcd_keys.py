"""Lesson 04's view of what instances wrote to etcd: each key under a prefix, its lease's TTL and its revisions."""

from __future__ import annotations

from typing import Any

from lab_services.core.table import Table


def keys_with_leases(etcd: Any, prefix: str = "/services/user/") -> Table:
    """A row per key under `prefix`: the key, its lease (hex), the lease's granted TTL and TTL left, and the
    revisions that created and last modified the key. A key written without a lease shows lease 0 and no TTL.

    `etcd` is a pyetcd client (`lab.etcd_client(...)`); the TTL left counts down and jumps back to the granted TTL at
    each keepalive, so two calls a second apart show the lease being refreshed.
    """
    rows = []
    for _value, meta in etcd.get_prefix(prefix):
        lease = etcd.get_lease_info(meta.lease_id) if meta.lease_id else None
        rows.append(
            {
                "key": meta.key.decode(),
                "lease": f"{meta.lease_id:x}",
                "granted TTL": lease.grantedTTL if lease else None,
                "TTL left": lease.TTL if lease else None,
                "created at rev": meta.create_revision,
                "modified at rev": meta.mod_revision,
            }
        )
    return Table(rows)
