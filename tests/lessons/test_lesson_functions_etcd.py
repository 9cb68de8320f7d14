"""Lesson 04's table of what instances wrote to etcd, on a real etcd member: keys, leases, TTLs and revisions."""

from __future__ import annotations

from lab_services.lessons.etcd_keys import keys_with_leases


def test_keys_with_leases_shows_each_key_with_its_lease_ttl_and_revisions(etcd_node):
    etcd = etcd_node.client()
    lease = etcd.lease(30)
    try:
        etcd.put("/keys-test/leased", "127.0.0.1:5001", lease=lease)
        etcd.put("/keys-test/plain", "one")
        etcd.put("/keys-test/plain", "two")
        rows = {row["key"]: row for row in keys_with_leases(etcd, "/keys-test/")}
        assert list(rows) == ["/keys-test/leased", "/keys-test/plain"]
        leased, plain = rows["/keys-test/leased"], rows["/keys-test/plain"]
        assert leased["lease"] == f"{lease.id:x}" and leased["granted TTL"] == 30 and 0 < leased["TTL left"] <= 30
        assert plain["lease"] == "0" and plain["granted TTL"] is None and plain["TTL left"] is None
        assert plain["created at rev"] < plain["modified at rev"] == leased["created at rev"] + 2
        assert len(keys_with_leases(etcd, "/keys-test/nothing-here/")) == 0
    finally:
        etcd.delete_prefix("/keys-test/")
        lease.revoke()
        etcd.close()
