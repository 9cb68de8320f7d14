"""A failed call made up on the client without touching the network, e.g. when a circuit breaker is open.

It is an RpcError, a Call and a Future at once, like the calls grpc's interceptors hand around, so an
interceptor can return it in place of a real call: blocking calls raise it, futures hold it, streams
raise it on the first message, and `err.code()` / `err.details()` read as for any other RPC.
"""

from __future__ import annotations

import grpc

from lab_services.core.errors import LabError


class LocalRpcError(LabError, grpc.RpcError, grpc.Call, grpc.Future):
    """An already finished RPC with status `code` and message `details`."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

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

    def add_callback(self, callback) -> bool:
        return False

    # grpc.Future: done from the start, with this error as its exception.
    def cancel(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def running(self) -> bool:
        return False

    def done(self) -> bool:
        return True

    def result(self, timeout=None):
        raise self

    def exception(self, timeout=None):
        return self

    def traceback(self, timeout=None):
        return None

    def add_done_callback(self, fn) -> None:
        fn(self)

    # A response stream that fails on its first message.
    def __iter__(self):
        return self

    def __next__(self):
        raise self

    def __str__(self) -> str:
        return (
            f"<{type(self).__name__} of RPC that terminated with: status = {self._code}, details = {self._details!r}>"
        )
