"""The error a discovery channel raises when the registry knows no instance to call: an RpcError with code UNAVAILABLE."""
from __future__ import annotations

import grpc


class NoInstanceError(grpc.RpcError, grpc.Call):
    """Raised like a failed call, so `except grpc.RpcError` and `err.code()` work as for any other RPC."""

    def __init__(self, service: str, where: str):
        self.service = service
        self.where = where
        self._details = f"no passing instance of {service!r} in {where}"
        super().__init__(self._details)

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return self._details

    def initial_metadata(self):
        return ()

    def trailing_metadata(self):
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self):
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback) -> bool:
        return False

    def __str__(self) -> str:
        return f"<NoInstanceError of RPC that terminated with: status = StatusCode.UNAVAILABLE, details = {self._details!r}>"
