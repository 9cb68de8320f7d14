"""Long-lived streams against one user-service instance: do its health check and unary calls still answer?

    discovery-lab bench streams --streams 1000 --json      # against the running lab, or a fresh small one
    compare_server_kinds(streams=60)                       # lesson 05: the thread pool starves, asyncio does not

A thread-pool gRPC server gives each open stream one of its workers until the stream ends, so a few
dozen watchers leave nothing for the health check: Consul marks a live instance critical and discovery
drops it. The asyncio server keeps each stream as a suspended coroutine and refuses streams beyond
its stated limit with RESOURCE_EXHAUSTED, so health and unary calls keep answering.
"""
from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lab_services.core.http import http_json
from lab_services.runtime.status import ClusterStatus
from lab_services.service import user_pb2, user_pb2_grpc

KINDS = ("watch", "chat")
DEFAULT_STREAMS = 1000


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
            if self.kind == "chat":
                await call.write(user_pb2.ChatMessage(sender="bench", text="hello"))
            message = await call.read()
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


def p99(samples: list[float]) -> float | None:
    if len(samples) < 2:
        return samples[0] if samples else None
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def passing_in_consul(consul_http: str, service: str, instance_id: str) -> bool:
    """Whether Consul's catalog lists the instance as passing, which is what discovery clients read."""
    entries = http_json(f"http://{consul_http}/v1/health/service/{service}?passing")
    return any(entry["Service"]["ID"] == instance_id for entry in entries)


def measure(address: str, streams: int, kind: str = "watch", consul_http: str | None = None, service: str = "user",
            instance_id: str | None = None, hold_seconds: float = 3.0, unary_calls: int = 200) -> dict[str, Any]:
    """Open `streams` streams on one instance and, while they stay open, ask its health and time unary calls.

    With `consul_http` the streams stay open for `hold_seconds` (three of Consul's 1 s check intervals)
    before Consul's verdict is read, so a starved instance has had time to fail its checks.
    """
    with OpenStreams(address, streams, kind) as load:
        started = time.monotonic()
        answered, failed = unary_latencies(address, unary_calls)
        health = health_check(address)
        if consul_http and instance_id:
            time.sleep(max(0.0, hold_seconds - (time.monotonic() - started)))
            consul_ok = passing_in_consul(consul_http, service, instance_id)
        else:
            consul_ok = None
        return {
            "kind": kind,
            "requested_streams": streams,
            "open_streams": load.established,
            "refused_streams": load.refused,
            "health": health,
            "passing_in_consul": consul_ok,
            "health_ok": health == "SERVING" and consul_ok is not False,
            "unary_calls": unary_calls,
            "unary_failures": failed,
            "p99_unary_seconds": None if (q := p99(answered)) is None else round(q, 4),
        }


@contextlib.contextmanager
def _instance() -> Iterator[dict[str, Any]]:
    """The first running instance of the running lab, or of a fresh small one (1 Consul server, 1 instance)."""
    from lab_services.runtime import connect
    from lab_services.runtime.config import ClusterConfig
    from lab_services.runtime.local import LocalCluster
    from lab_services.runtime.supervised import LabNotRunningError

    try:
        yield _target(connect().status())
        return
    except LabNotRunningError:
        pass
    with tempfile.TemporaryDirectory(prefix="lab-bench-streams-") as tmp:
        cluster = LocalCluster(ClusterConfig(consul_servers=1, etcd_members=0, services=1, prometheus=False,
                                             registry="consul"), base=Path(tmp))
        try:
            cluster.up()
            yield _target(cluster.status())
        finally:
            cluster.down()


def _target(status: ClusterStatus) -> dict[str, Any]:
    if status.tls:
        raise ValueError("invalid argument: lab: bench streams calls plaintext gRPC; start the lab without --tls")
    running = [s for s in status.services if s.state == "running"]
    if not running:
        raise ValueError("invalid argument: lab: no user-service instance is running; `discovery-lab reset` starts them")
    first = running[0]
    consul = status.consul.http
    return {"address": first.address, "instance_id": first.id, "service": first.name,
            "consul_http": consul[0] if consul else None}


def run(streams: int = DEFAULT_STREAMS, kind: str = "watch") -> dict[str, Any]:
    """`bench streams`: `measure` against one instance of the running lab (or a fresh one)."""
    with _instance() as target:
        return {"instance": target["instance_id"], **measure(target["address"], streams, kind, target["consul_http"],
                                                              target["service"], target["instance_id"])}


def describe(result: dict[str, Any]) -> str:
    refused = ", ".join(f"{n} {code}" for code, n in result["refused_streams"].items()) or "none"
    return (f"{result['open_streams']} of {result['requested_streams']} {result['kind']} streams open on {result['instance']} "
            f"(refused: {refused})\nhealth check: {result['health']}, passing in Consul: {result['passing_in_consul']}\n"
            f"unary p99 while they were open: {result['p99_unary_seconds']} s "
            f"({result['unary_failures']} of {result['unary_calls']} calls failed)")


def compare_server_kinds(streams: int = 60, kind: str = "watch", max_workers: int = 32) -> list[dict[str, Any]]:
    """Lesson 05: the same open streams against a thread-pool server and an asyncio one, side by side.

    With more streams than `max_workers`, the thread-pool server has no thread left for its health check
    (DEADLINE_EXCEEDED: Consul would mark it critical) nor for unary calls; the asyncio server serves all.
    `streams_served` counts streams that got a message: a starved server serves `max_workers` chats, and
    hardly any watch, because the change that would feed them is a unary call waiting for a thread too.
    """
    from lab_services.service import UserServer

    rows = []
    for server_kind in ("threads", "aio"):
        server = UserServer(name=f"lesson05-{server_kind}", server_kind=server_kind, max_workers=max_workers).start()
        try:
            with OpenStreams(server.address, streams, kind, establish_timeout=2.0) as load:
                answered, failed = unary_latencies(server.address, calls=5, timeout=0.5)
                rows.append({"server": server_kind, "streams_requested": streams, "streams_served": load.established,
                             "health_check": health_check(server.address, timeout=0.5),
                             "unary_calls_answered": f"{len(answered)} of {len(answered) + failed}"})
        finally:
            server.stop(0)
    return rows
