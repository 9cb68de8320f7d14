"""Reset really resets: after a lesson's leftovers (stray and critical registrations, KV and etcd keys, faults,
users, an added instance), `reset()` leaves the real cluster as a fresh `up` left it."""

from __future__ import annotations

import contextlib

import consul
import grpc
import pytest
from labs import local_lab

from lab_services.core.addresses import consul_http_address, etcd_endpoints
from lab_services.core.wait import wait_until
from lab_services.registry.consul_health import ConsulHealth
from lab_services.registry.etcd import etcd_client
from lab_services.service import AdminClient, user_pb2, user_pb2_grpc


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("reset"), consul_servers=1, etcd_members=1, services=2, prometheus=False
    ) as lab:
        yield lab


def shape(cluster) -> dict:
    """What a lesson can change, read from the servers and the instances themselves."""
    status = cluster.status()
    host, port = consul_http_address(status.consul.http[0])
    client = consul.Consul(host=host, port=port)
    etcd = etcd_client(etcd_endpoints(status.etcd.endpoints), 2.0)
    try:
        instances = {s.id: AdminClient(s.admin).state() for s in status.services}
        return {
            "processes": sorted((p.name, p.state) for p in status.processes),
            "consul services": sorted(client.agent.services()),
            "consul checks": sorted(client.agent.checks()),
            "consul kv": client.kv.get("", keys=True)[1],
            "etcd keys": sorted(meta.key.decode() for _, meta in etcd.get_all()),
            "instances": {i: (s["faults"], s["health"], s["users"]) for i, s in instances.items()},
        }
    finally:
        client.http.session.close()
        etcd.close()


def test_reset_undoes_what_an_aborted_lesson_left(cluster):
    fresh = shape(cluster)
    status = cluster.status()
    host, port = consul_http_address(status.consul.http[0])
    client = consul.Consul(host=host, port=port)
    etcd = etcd_client(etcd_endpoints(status.etcd.endpoints), 2.0)
    user1, user2 = status.services
    try:
        # What lessons 02-04 leave when stopped halfway: a critical registration whose heartbeat died, KV and etcd
        # keys (one under the services prefix, as lesson 04's own instance), faults, a flipped health, users, a canary.
        client.agent.service.register(
            "lesson02-doomed",
            service_id="lesson02-doomed-1",
            address="127.0.0.1",
            port=1,
            check={"CheckID": "lesson02-doomed-ttl", "TTL": "10m"},
        )
        client.kv.put("lesson09/drill", "token")
        etcd.put("/lesson04/scratch", "three")
        etcd.put("/services/user/lesson04", "{}", lease=etcd.lease(60))
        AdminClient(user1.admin).set_faults(latency_ms=200, error_rate=0.5)
        AdminClient(user2.admin).set_health("NOT_SERVING")
        with grpc.insecure_channel(user1.address) as channel:
            stub = user_pb2_grpc.UserServiceStub(channel)
            for n in range(3):
                # The injected error rate fails some; one created user is enough.
                with contextlib.suppress(grpc.RpcError):
                    stub.CreateUser(user_pb2.CreateUserRequest(name="Ada", email=f"ada-{n}@example.com"), timeout=5)
            AdminClient(user1.admin).set_faults(error_rate=0)
            stub.CreateUser(user_pb2.CreateUserRequest(name="Ada", email="ada-last@example.com"), timeout=5)
        cluster.add_service(version="v2")
        dirty = shape(cluster)
        assert dirty != fresh
        assert ConsulHealth(status.consul.http[0]).status("lesson02-doomed-ttl") == "critical"

        steps = cluster.reset()

        assert any("deregistered lesson02-doomed-1" in s for s in steps), steps
        assert any("emptied user-1's store" in s for s in steps), steps
        with ConsulHealth(status.consul.http[0]) as health:
            for service in ("user-1", "user-2"):
                health.wait_all(service, "passing", timeout=15)
        wait_until(lambda: shape(cluster) == fresh, 10, "the lab to equal a fresh up", seen=lambda: str(shape(cluster)))
    finally:
        client.http.session.close()
        etcd.close()
