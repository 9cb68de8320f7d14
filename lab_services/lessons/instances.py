"""Instances of a lesson's own service, started in this kernel and registered in Consul with a gRPC check."""

from __future__ import annotations

from lab_services.core.instance import ServiceInstance
from lab_services.registry import CheckSpec, ConsulRegistrar, ServiceRegistration
from lab_services.service import UserServer


def start_registered(
    name: str, count: int, consul_http: str, check_interval: str = "1s"
) -> tuple[dict[str, UserServer], list[ConsulRegistrar]]:
    """Start `count` UserServers named `name` on free ports of kernel_host() and register each there in Consul at
    `consul_http`, with a gRPC health check every `check_interval`.

    Returns ({instance id: server}, [registrar, ...]); stopping a registrar deregisters its instance, and stopping a
    server ends it. If one fails to start or register, those already started are stopped before the error goes on.
    """
    if count < 1:
        raise ValueError(f"invalid argument: count: {count!r}; start at least one instance")
    servers: dict[str, UserServer] = {}
    registrars: list[ConsulRegistrar] = []
    try:
        for _ in range(count):
            server = UserServer(name=name).start()
            servers[server.instance_id] = server
            registration = ServiceRegistration(
                ServiceInstance(id=server.instance_id, name=name, host=server.host, port=server.port),
                checks=[CheckSpec("grpc", interval=check_interval)],
            )
            registrars.append(ConsulRegistrar(registration, consul_http=consul_http).start())
    except BaseException:
        for registrar in registrars:
            registrar.stop()
        for server in servers.values():
            server.stop(grace=0)
        raise
    return servers, registrars
