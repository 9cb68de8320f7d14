"""The one client interceptor shape the resilience tools share: see every call of all four kinds finish.

grpc has a separate interceptor class per call kind; ObservingClientInterceptor implements all four the
same way, so a subclass only says what to do before a call (`_before`, which may answer it locally)
and after it (`_observe(method, code, seconds)`, called once the call has finished).
"""

from __future__ import annotations

import collections
import time

import grpc


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    """grpc.ClientCallDetails is abstract; interceptors that change a call build one of these."""


def with_metadata(details: grpc.ClientCallDetails, *pairs: tuple[str, str]) -> grpc.ClientCallDetails:
    """The same call details with `pairs` added to its metadata."""
    return _CallDetails(
        details.method,
        details.timeout,
        (*(details.metadata or ()), *pairs),
        details.credentials,
        details.wait_for_ready,
        details.compression,
    )


def call_code(call) -> grpc.StatusCode:
    """The status of a finished call; a call that raised something other than an RpcError reads UNKNOWN."""
    code = call.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


class ObservingClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Base class: override `_before` and/or `_observe`; use with grpc.intercept_channel(channel, interceptor)."""

    def _before(self, client_call_details: grpc.ClientCallDetails):
        """Return a call object (e.g. a LocalRpcError) to answer without sending, or None to send.

        May also return changed call details, to send the call with them instead.
        """
        return None

    def _observe(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        """Called once per call that was sent, when it has finished."""

    def _intercept(self, continuation, client_call_details, request_or_iterator):
        answer = self._before(client_call_details)
        if isinstance(answer, grpc.ClientCallDetails):
            client_call_details, answer = answer, None
        if answer is not None:
            return answer
        method = client_call_details.method
        if isinstance(method, bytes):
            method = method.decode()
        started = time.perf_counter()
        call = continuation(client_call_details, request_or_iterator)
        call.add_done_callback(lambda done: self._observe(method, call_code(done), time.perf_counter() - started))
        return call

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return self._intercept(continuation, client_call_details, request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return self._intercept(continuation, client_call_details, request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return self._intercept(continuation, client_call_details, request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return self._intercept(continuation, client_call_details, request_iterator)
