"""Lesson 05's old failure next to its fix: long-lived streams starve a thread-pool gRPC server, not a grpc.aio one.

    rows = compare_server_kinds(streams=40, max_workers=8, consul_http=CONSUL)

A thread-pool server gives each open stream one of its workers until the stream ends, so a few dozen watchers leave
nothing for the health check: it times out, Consul marks the live instance critical and discovery drops it. The
asyncio server keeps each stream as a suspended coroutine, so health and unary calls keep answering. The stream
benchmark (`bench/streams.py`, `discovery-lab bench streams`) builds on the same pieces.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lab_services.core.instance import ServiceInstance
from lab_services.core.progress import OnStep
from lab_services.core.wait import WaitTimeout, wait_for
from lab_services.registry import CheckSpec, ConsulRegistrar, ServiceRegistration
from lab_services.registry.consul_health import ConsulHealth
from lab_services.service import UserServer, user_pb2, user_pb2_grpc

KINDS = ("watch", "chat")
# How long a new Chat stream is given to be refused before the first message goes out (refusals came within
# milliseconds here; the grace covers a loaded machine).
REFUSAL_GRACE = 0.5


class OpenStreams:
    """`count` streams of one kind held open on one instance by an asyncio client on its own thread.

    A stream counts as open once it has exchanged a message with the server (a watch got its first
    event, a chat its first reply): that proves the server is serving it, not just that the client asked.
    Streams the server refuses are counted by status code in `refused`.
    """

    def __init__(self, address: str, count: int, kind: str = "watch", establish_timeout: float = 20.0):
        if kind not in KINDS:
            raise ValueError(f"invalid argument: kind: {kind!r}; use {' or '.join(KINDS)}")
        if count < 1:
            raise ValueError(f"invalid argument: streams: {count}; must be at least 1")
        self.address, self.count, self.kind = address, count, kind
        self.establish_timeout = establish_timeout
        self.established = 0
        self.refused: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-streams", daemon=True)
        self._calls: list[Any] = []
        self._channel: aio.Channel | None = None

    def __enter__(self) -> OpenStreams:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._open(), self._loop).result()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()

    async def _open(self) -> None:
        self._channel = aio.insecure_channel(self.address)
        stub = user_pb2_grpc.UserServiceStub(self._channel)
        for _ in range(self.count):
            self._calls.append(stub.WatchUsers(user_pb2.WatchUsersRequest()) if self.kind == "watch" else stub.Chat())
        # One read per stream for the whole wait: cancelling a pending read (as wait_for would) cancels the call.
        firsts = [asyncio.ensure_future(self._first_message(call)) for call in self._calls]
        deadline = time.monotonic() + self.establish_timeout
        while not all(first.done() for first in firsts) and time.monotonic() < deadline:
            if self.kind == "watch":
                # A change reaches every watch that has subscribed by now; the next round reaches the rest.
                with contextlib.suppress(aio.AioRpcError):
                    await stub.CreateUser(_bench_user(), timeout=0.5)
            await asyncio.wait(firsts, timeout=0.5, return_when=asyncio.ALL_COMPLETED)
        results = [first.result() if first.done() else grpc.StatusCode.DEADLINE_EXCEEDED.name for first in firsts]
        self.established = results.count(None)
        for code in filter(None, results):
            self.refused[code] = self.refused.get(code, 0) + 1

    async def _first_message(self, call: Any) -> str | None:
        """None once the stream exchanged a message with the server, else the status code it ended with."""
        try:
            reading = asyncio.ensure_future(call.read())
            if self.kind == "chat":
                # A refused stream ends at once; only an open one gets our message. Writing into a stream the server has
                # just refused races with its status, and grpcio's client then ends the call INTERNAL ("Internal error
                # from Core", 57 of 200 refusals here) instead of with the server's RESOURCE_EXHAUSTED.
                await asyncio.wait([reading], timeout=REFUSAL_GRACE)
                if not reading.done():
                    await call.write(user_pb2.ChatMessage(sender="bench", text="hello"))
            message = await reading
        except aio.AioRpcError as err:
            return err.code().name
        except asyncio.CancelledError:
            return grpc.StatusCode.CANCELLED.name
        return None if message is not aio.EOF else (await call.code()).name

    async def _close(self) -> None:
        for call in self._calls:
            call.cancel()
        if self._channel is not None:
            await self._channel.close()
        # gRPC finishes each cancelled call in a task of its own; let them end before the loop stops.
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=5)


def _bench_user() -> user_pb2.CreateUserRequest:
    stamp = time.monotonic_ns()
    return user_pb2.CreateUserRequest(name=f"stream bench {stamp}", email=f"streams{stamp}@example.com")


def health_check(address: str, timeout: float = 1.0) -> str:
    """The instance's grpc.health.v1 answer ('SERVING', 'NOT_SERVING') or the status code that came instead."""
    with grpc.insecure_channel(address) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError as err:
            return err.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)


def unary_latencies(address: str, calls: int = 200, timeout: float = 1.0) -> tuple[list[float], int]:
    """Seconds per GetUser call that answered (NOT_FOUND counts: the server answered), and how many did not."""
    answered, failed = [], 0
    with grpc.insecure_channel(address) as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        for _ in range(calls):
            started = time.perf_counter()
            try:
                stub.GetUser(user_pb2.GetUserRequest(id="u-0"), timeout=timeout)
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.NOT_FOUND:
                    failed += 1
                    continue
            answered.append(time.perf_counter() - started)
    return answered, failed


def _consul_verdict(server: UserServer, consul_http: str, settle: float) -> str:
    """Register `server` with a 1 s gRPC check (1 s timeout), give Consul `settle` seconds to pass it, and return the
    check's status: 'passing', or 'critical' when the health check could not get an answer in time."""
    registration = ServiceRegistration(
        ServiceInstance(
            id=f"lesson05-starved-{server.port}", name="lesson05-starved", host=server.host, port=server.port
        ),
        checks=[CheckSpec("grpc", interval="1s", timeout="1s")],
    )
    registrar = ConsulRegistrar(registration, consul_http=consul_http).start()
    check_id = registration.check_ids()[0]
    try:
        with ConsulHealth(consul_http) as health:
            # A starved server never passes: that is the finding, not an error.
            with contextlib.suppress(WaitTimeout):
                wait_for(lambda: health.status(check_id) == "passing", settle, f"{check_id} passing")
            return health.status(check_id) or "unknown"
    finally:
        registrar.stop()  # deregisters


def compare_server_kinds(
    streams: int = 60,
    kind: str = "watch",
    max_workers: int = 32,
    consul_http: str | None = None,
    settle: float = 4.0,
    progress: OnStep | None = None,
) -> list[dict[str, Any]]:
    """Lesson 05: the same open streams against a thread-pool server and an asyncio one, side by side.

    With more streams than `max_workers`, the thread-pool server has no thread left for its health check
    (DEADLINE_EXCEEDED: with `consul_http`, Consul's own gRPC check turns critical) nor for unary calls; the asyncio
    server serves all. `streams_served` counts streams that got a message: a starved server serves `max_workers`
    chats, and hardly any watch, because the change that would feed them is a unary call waiting for a thread too.
    """
    rows = []
    for n, server_kind in enumerate(("threads", "aio")):
        if progress is not None:
            progress(n, 2, f"{streams} {kind} streams on the {server_kind} server")
        server = UserServer(name=f"lesson05-{server_kind}", server_kind=server_kind, max_workers=max_workers).start()
        try:
            with OpenStreams(server.address, streams, kind, establish_timeout=2.0) as load:
                answered, failed = unary_latencies(server.address, calls=5, timeout=0.5)
                row = {
                    "server": server_kind,
                    "streams_requested": streams,
                    "streams_served": load.established,
                    "health_check": health_check(server.address, timeout=0.5),
                    "unary_calls_answered": f"{len(answered)} of {len(answered) + failed}",
                }
                if consul_http:
                    row["consul_check"] = _consul_verdict(server, consul_http, settle)
                rows.append(row)
        finally:
            server.stop(0)
    if progress is not None:
        progress(2, 2, "done")
    return rows
