"""Lesson 06's exercise: a channel that passes an mTLS server's handshake. The checker says right or wrong and why; `my_mtls_channel` is one solution."""
from __future__ import annotations

from typing import Any, Callable

import grpc

from lab_services.lessons.exercises.verdict import Verdict
from lab_services.service import UserServer, user_pb2, user_pb2_grpc
from lab_services.tls import channel
from lab_services.tls.explain import explain

NAME = "06-mtls"


def check(make_channel: Callable[..., Any], material: Any) -> Verdict:
    """06-mtls: `make_channel(address, material)` returns a channel that passes an mTLS server's handshake."""
    name = NAME
    if not callable(make_channel):
        return Verdict(name, False, f"define my_mtls_channel(address, material) returning a grpc.Channel; got {make_channel!r}")
    server = UserServer(name="exercise06", tls=material.server_tls(mtls=True)).start()
    try:
        made = make_channel(server.address, material)
        if not isinstance(made, grpc.Channel):
            return Verdict(name, False, f"make_channel returned {made!r}; return a grpc.Channel")
        with made:
            try:
                user_pb2_grpc.UserServiceStub(made).GetUser(user_pb2.GetUserRequest(id="u-404"), timeout=3, wait_for_ready=False)
            except grpc.RpcError as err:
                if err.code() == grpc.StatusCode.NOT_FOUND:  # the servicer answered: the handshake worked
                    return Verdict(name, True, "the mTLS server accepted your certificate and the call reached the service")
                return Verdict(name, False, f"the call failed: {explain(err, client_tls=True, client_cert=True)}")
        return Verdict(name, False, "the call for user u-404 succeeded, which it never should; is this the lab's server?")
    finally:
        server.stop(0)


def my_mtls_channel(address: str, material: Any) -> grpc.Channel:
    """Trust the lab CA and present material.client: what an mTLS server asks of its callers."""
    return channel(address, material, mtls=True)


SOLUTION = my_mtls_channel
