"""Server interceptor plumbing: wrap any handler's behaviour, and tag every call with its instance id.

grpc's Python server interceptors only see the handler, not the call, so each of ours replaces the
handler's behaviour function with a wrapper; wrap_handler does that once for all four call modes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

Behavior = Callable[[Any, grpc.ServicerContext], Any]
SERVED_BY_HEADER = "x-served-by"

_FACTORIES = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def wrap_handler(
    handler: grpc.RpcMethodHandler | None, wrap: Callable[[Behavior, bool], Behavior]
) -> grpc.RpcMethodHandler | None:
    """The same handler with its behaviour replaced by wrap(behaviour, response_streaming)."""
    if handler is None:
        return None
    attribute, factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
    return factory(
        wrap(getattr(handler, attribute), handler.response_streaming),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def split_method(full_method: str) -> tuple[str, str]:
    """'/lab.user.v1.UserService/GetUser' -> ('lab.user.v1.UserService', 'GetUser')."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method


class ServedByInterceptor(grpc.ServerInterceptor):
    """Sends `x-served-by: <instance id>` as initial metadata on every call, failed ones included.

    Initial metadata goes out before the handler runs, so a client counting calls per instance sees
    which instance answered even when the call then fails (an injected fault, a validation error).
    """

    def __init__(self, instance_id: Callable[[], str]):
        self._instance_id = instance_id

    def intercept_service(self, continuation, handler_call_details):
        def wrap(behavior: Behavior, _streaming: bool) -> Behavior:
            def tagged(request, context: grpc.ServicerContext):
                context.send_initial_metadata(((SERVED_BY_HEADER, self._instance_id()),))
                return behavior(request, context)

            return tagged

        return wrap_handler(continuation(handler_call_details), wrap)
