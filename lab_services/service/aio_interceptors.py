"""The lab's server interceptors for the grpc.aio server: metrics, x-served-by, faults, and a cap on open streams.

They do what the thread server's interceptors do (metrics.py, interceptors.py, faults.py) with the same
counters, header and fault settings, but await instead of blocking: a sleeping fault or an open stream
must never hold the one event loop thread that also answers health checks.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from grpc import aio

from lab_services.service.faults import FaultInjector
from lab_services.service.interceptors import SERVED_BY_HEADER, Behavior, split_method, wrap_handler
from lab_services.service.metrics import ServiceMetrics

_CODES_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


async def responses(behavior: Behavior, request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
    """A streaming handler's messages, whether it yields them or writes them itself (grpc_health's Watch)."""
    result = behavior(request, context)
    if inspect.isasyncgen(result):
        async for message in result:
            yield message
    else:
        await result


def final_code(context: aio.ServicerContext, failed: BaseException | None) -> grpc.StatusCode:
    """The status an asyncio call ended with: its abort code, CANCELLED, UNKNOWN for an exception, else OK."""
    if isinstance(failed, (asyncio.CancelledError, GeneratorExit)):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    if isinstance(code, int):
        code = _CODES_BY_VALUE.get(code)
    if failed is not None and not isinstance(failed, aio.AbortError):
        return grpc.StatusCode.UNKNOWN
    return code or grpc.StatusCode.OK


class AsyncMetricsInterceptor(aio.ServerInterceptor):
    """ServiceMetrics for every call; put it first so it also times the other interceptors."""

    def __init__(self, metrics: ServiceMetrics):
        self._metrics = metrics

    async def intercept_service(self, continuation, handler_call_details):
        labels = split_method(handler_call_details.method)
        metrics = self._metrics

        def wrap(behavior: Behavior, streaming: bool) -> Behavior:
            async def measured_unary(request, context):
                started, failed = metrics.begin(labels), None
                try:
                    return await behavior(request, context)
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    metrics.end(labels, started, final_code(context, failed))

            async def measured_stream(request, context):
                started, failed = metrics.begin(labels), None
                try:
                    async for message in responses(behavior, request, context):
                        yield message
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    metrics.end(labels, started, final_code(context, failed))

            return measured_stream if streaming else measured_unary

        return wrap_handler(await continuation(handler_call_details), wrap)


class AsyncServedByInterceptor(aio.ServerInterceptor):
    """`x-served-by` with the first response, or in the trailers of a call that fails before answering.

    An asyncio abort sends its status at once, with the trailers set so far: so the header is put in the
    trailers before the handler runs and taken out again once the first response carries it. gRPC never
    retries a call after response headers (gRFC A6), which is why the header waits for the first response.
    """

    def __init__(self, instance_id: Callable[[], str]):
        self._instance_id = instance_id

    async def intercept_service(self, continuation, handler_call_details):
        def wrap(behavior: Behavior, streaming: bool) -> Behavior:
            async def tagged_unary(request, context):
                header = ((SERVED_BY_HEADER, self._instance_id()),)
                context.set_trailing_metadata(header)
                response = await behavior(request, context)
                await _answer_with(context, header)
                return response

            async def tagged_stream(request, context):
                header = ((SERVED_BY_HEADER, self._instance_id()),)
                context.set_trailing_metadata(header)
                sent = False
                async for message in responses(behavior, request, context):
                    if not sent:
                        sent = await _answer_with(context, header)
                    yield message
                if not sent:
                    await _answer_with(context, header)

            return tagged_stream if streaming else tagged_unary

        return wrap_handler(await continuation(handler_call_details), wrap)


async def _answer_with(context: aio.ServicerContext, header: tuple[tuple[str, str], ...]) -> bool:
    """Send the header as initial metadata and drop it from the trailers; False when the call already ended."""
    if context.done():
        return False
    context.set_trailing_metadata(())
    await context.send_initial_metadata(header)
    return True


class AsyncFaultInterceptor(aio.ServerInterceptor):
    """Applies a FaultInjector before each call to one service (the user service), awaiting the latency."""

    def __init__(self, injector: FaultInjector, service: str):
        self._injector = injector
        self._service = service

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if split_method(handler_call_details.method)[0] != self._service:
            return handler

        async def injected(context: aio.ServicerContext) -> None:
            delay, error = self._injector.draw()
            if delay:
                await asyncio.sleep(delay)
            if error:
                await context.abort(grpc.StatusCode.UNAVAILABLE, error)

        def wrap(behavior: Behavior, streaming: bool) -> Behavior:
            async def faulty_unary(request, context):
                await injected(context)
                return await behavior(request, context)

            async def faulty_stream(request, context):
                await injected(context)
                async for message in responses(behavior, request, context):
                    yield message

            return faulty_stream if streaming else faulty_unary

        return wrap_handler(handler, wrap)


class StreamLimit(aio.ServerInterceptor):
    """At most `limit` open streaming calls to one service; the next gets RESOURCE_EXHAUSTED at once.

    Refusing is what keeps a server useful under a flood of watchers: without a cap, each stream costs
    memory until the process is killed. Only `service` is counted and refused, so the health service
    (and reflection) always answer, and unary calls are never refused.
    """

    def __init__(self, limit: int, service: str, instance_id: Callable[[], str]):
        self.limit = limit
        self.open = 0  # only touched on the event loop's thread
        self._service = service
        self._instance_id = instance_id

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if (
            handler is None
            or split_method(handler_call_details.method)[0] != self._service
            or not (handler.request_streaming or handler.response_streaming)
        ):
            return handler

        def wrap(behavior: Behavior, streaming: bool) -> Behavior:
            async def admit(context: aio.ServicerContext) -> None:
                if self.open >= self.limit:
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"{self._instance_id()} has {self.open} open streams, its limit (max_streams, "
                        f"--max-streams); close a stream or call another instance. Unary calls still answer.",
                    )
                self.open += 1

            async def limited_unary(request, context):
                await admit(context)
                try:
                    return await behavior(request, context)
                finally:
                    self.open -= 1

            async def limited_stream(request, context):
                await admit(context)
                try:
                    async for message in responses(behavior, request, context):
                        yield message
                finally:
                    self.open -= 1

            return limited_stream if streaming else limited_unary

        return wrap_handler(handler, wrap)
