"""Ask a running gRPC server what it serves, through server reflection: services, methods and their call modes."""

from __future__ import annotations

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from lab_services.core.table import Table


def call_mode(client_streaming: bool, server_streaming: bool) -> str:
    """The name of a method's call mode: 'unary', 'server streaming', 'client streaming' or 'bidirectional'."""
    if client_streaming and server_streaming:
        return "bidirectional"
    if client_streaming:
        return "client streaming"
    return "server streaming" if server_streaming else "unary"


def list_services(address: str, timeout: float = 5.0) -> list[str]:
    """The fully qualified services a server offers, e.g. ['grpc.health.v1.Health', 'lab.user.v1.UserService', ...]."""
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        return sorted(ProtoReflectionDescriptorDatabase(channel).get_services())


def describe_methods(address: str, timeout: float = 5.0) -> Table:
    """Every method of every service (reflection itself left out), with its input, output and call mode."""
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = DescriptorPool(database)
        rows = []
        for name in sorted(database.get_services()):
            if name.startswith("grpc.reflection."):
                continue
            for method in pool.FindServiceByName(name).methods:
                rows.append(
                    {
                        "service": name,
                        "method": method.name,
                        "input": method.input_type.full_name,
                        "output": method.output_type.full_name,
                        "mode": call_mode(method.client_streaming, method.server_streaming),
                    }
                )
        return Table(rows)
