"""The error a discovery channel raises when the registry knows no instance to call: an RpcError, UNAVAILABLE."""

from __future__ import annotations

import grpc

from lab_services.core.rpc_errors import LocalRpcError


class NoInstanceError(LocalRpcError):
    """Raised like a failed call, so `except grpc.RpcError` and `err.code()` work as for any other RPC."""

    def __init__(self, service: str, where: str):
        self.service = service
        self.where = where
        super().__init__(grpc.StatusCode.UNAVAILABLE, f"no passing instance of {service!r} in {where}")
