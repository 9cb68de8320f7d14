"""Server interceptor plumbing: wrap any handler's behaviour, and tag every call with its instance id.

grpc's Python server interceptors only see the handler, not the call, so each of ours replaces the
handler's behaviour function with a wrapper; wrap_handler does that once for all four call modes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from lab_services.core.wire import SERVED_BY_HEADER

Behavior = Callable[[Any, grpc.ServicerContext], Any]

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


def final_code(context: grpc.ServicerContext, failed: BaseException | None) -> grpc.StatusCode:
    """The status a server call ended with, as the client will see it.

    context.code() is None unless the handler set or aborted with a code; then a handler that raised
    ends UNKNOWN, and one whose client went away (cancel, deadline) before it returned ends CANCELLED.
    """
    code = context.code()
    if code is not None:
        return code
    if isinstance(failed, GeneratorExit) or (failed is None and not context.is_active()):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN if failed is not None else grpc.StatusCode.OK


def split_method(full_method: str) -> tuple[str, str]:
    """'/lab.user.v1.UserService/GetUser' -> ('lab.user.v1.UserService', 'GetUser')."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method


class ServedByInterceptor(grpc.ServerInterceptor):
    """Tells the client which instance answered: `x-served-by: <instance id>` on every call, failed ones included.

    It goes out with the first response message, not before the handler runs: gRPC never retries a call
    once the server has sent headers (gRFC A6), so early headers would make every injected UNAVAILABLE
    final. A call that fails before answering carries the header in its trailing metadata instead.
    """

    def __init__(self, instance_id: Callable[[], str]):
        self._instance_id = instance_id

    def intercept_service(self, continuation, handler_call_details):
        def wrap(behavior: Behavior, streaming: bool) -> Behavior:
            def tagged_unary(request, context: grpc.ServicerContext):
                header = ((SERVED_BY_HEADER, self._instance_id()),)
                try:
                    response = behavior(request, context)
                except BaseException:
                    if context.is_active():  # a cancelled call has nobody left to tell
                        context.set_trailing_metadata(header)
                    raise
                if context.is_active():
                    context.send_initial_metadata(header)
                return response

            def tagged_stream(request, context: grpc.ServicerContext):
                header = ((SERVED_BY_HEADER, self._instance_id()),)
                sent = False
                try:
                    for message in behavior(request, context):
                        if not sent and context.is_active():
                            context.send_initial_metadata(header)
                            sent = True
                        yield message
                except BaseException:
                    if not sent and context.is_active():
                        context.set_trailing_metadata(header)
                    raise
                if not sent and context.is_active():
                    context.send_initial_metadata(header)

            return tagged_stream if streaming else tagged_unary

        return wrap_handler(continuation(handler_call_details), wrap)
