"""Lesson 07's bearer-token demo: a user service that requires a token, and calls through client interceptors.

    with TokenProtectedServer("s3cret") as server:
        create_through(server.address, BearerToken("s3cret"))     # 'OK, created u-...'
        create_through(server.address)                              # 'UNAUTHENTICATED: ...'

The server is built from its parts (servicer, store, health service) rather than with UserServer, so the
lesson shows where a server interceptor goes: in `grpc.server(..., interceptors=[...])`.
"""

from __future__ import annotations

import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from lab_services.core.network import kernel_host
from lab_services.resilience.interceptors import RequireBearerToken
from lab_services.service import user_pb2, user_pb2_grpc
from lab_services.service.servicer import UserServicer
from lab_services.service.store import UserStore


class TokenProtectedServer:
    """A user service on a free port of kernel_host() that refuses calls without `Bearer <token>` (health checks
    exempt)."""

    def __init__(self, token: str, instance_id: str = "lesson07-auth"):
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4),
            interceptors=[RequireBearerToken(token)],
            options=[("grpc.so_reuseport", 0)],
        )
        user_pb2_grpc.add_UserServiceServicer_to_server(UserServicer(UserStore(), instance_id), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), self.server)
        host = kernel_host()
        self.address = f"{host}:{self.server.add_insecure_port(f'{host}:0')}"

    def start(self) -> TokenProtectedServer:
        self.server.start()
        return self

    def stop(self, grace: float | None = 0) -> None:
        self.server.stop(grace)

    def __enter__(self) -> TokenProtectedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def create_through(address: str, *interceptors: grpc.UnaryUnaryClientInterceptor) -> str:
    """One CreateUser call through `interceptors`; 'OK, created <id>' or '<CODE>: <details>'."""
    channel = grpc.intercept_channel(grpc.insecure_channel(address), *interceptors)
    try:
        user = user_pb2_grpc.UserServiceStub(channel).CreateUser(
            user_pb2.CreateUserRequest(name="Ada", email=f"ada{time.time_ns()}@example.org"), timeout=2
        )
        return f"OK, created {user.id}"
    except grpc.RpcError as err:
        return f"{err.code().name}: {err.details()}"
    finally:
        channel.close()
