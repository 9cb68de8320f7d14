"""ServiceInstance: the one instance type the registry, discovery and the runtime share."""

from __future__ import annotations

from lab_services.core.instance import ServiceInstance


def test_an_instance_says_where_it_listens_and_its_version():
    meta = {"version": "v2"}
    instance = ServiceInstance("user-1", "user", "127.0.0.1", 5001, tags=["v2"], meta=meta)
    meta["version"] = "v3"
    assert (instance.address, instance.version, instance.tags) == ("127.0.0.1:5001", "v2", ("v2",))
    assert ServiceInstance("user-2", "user", "127.0.0.1", 5002).version is None


def test_instances_hash_without_their_meta():
    a = ServiceInstance("user-1", "user", "127.0.0.1", 5001, meta={"version": "v1"})
    b = ServiceInstance("user-1", "user", "127.0.0.1", 5001, meta={"version": "v2"})
    assert hash(a) == hash(b) and a != b
