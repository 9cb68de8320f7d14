"""Count what happened: the status codes a batch of calls got, the attempts an in-process UserServer handled, and
client latencies.

The server side is read from the server's own metrics (grpc_server_handled_total and
grpc_server_in_flight), so an attempt is counted whether it came from a first try or a retry.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lab_services.resilience.interceptors import ClientStats
    from lab_services.service import UserServer


def run_calls(call: Callable[[], Any], n: int) -> Counter[str]:
    """Make `n` calls with `call()` one after another; count their status codes by name."""
    codes: Counter[str] = Counter()
    for _ in range(n):
        try:
            call()
        except grpc.RpcError as error:
            codes[error.code().name] += 1
        else:
            codes["OK"] += 1
    return codes


def create_user_call(channel: grpc.Channel, timeout: float = 5.0) -> Callable[[], Any]:
    """A no-argument function that creates a new user (a fresh email each time) over `channel`."""
    # Imported here so that reading a server's counts does not load the generated code.
    from lab_services.service import user_pb2, user_pb2_grpc

    stub = user_pb2_grpc.UserServiceStub(channel)
    numbers = itertools.count()

    def call():
        n = next(numbers)
        email = f"user{n}.{time.time_ns()}@example.org"
        return stub.CreateUser(user_pb2.CreateUserRequest(name=f"user {n}", email=email), timeout=timeout)

    return call


def _samples(server: UserServer, name: str, method: str | None):
    for metric in server.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == name and (method is None or sample.labels.get("grpc_method") == method):
                yield sample


def server_codes(server: UserServer, method: str | None = None) -> Counter[str]:
    """Finished calls `server` handled, by status code (one method, or all)."""
    codes: Counter[str] = Counter()
    for sample in _samples(server, "grpc_server_handled_total", method):
        codes[sample.labels["grpc_code"]] += int(sample.value)
    return codes


def in_flight(server: UserServer, method: str | None = None) -> int:
    return int(sum(s.value for s in _samples(server, "grpc_server_in_flight", method)))


def server_attempts(server: UserServer, method: str | None = None) -> int:
    """Calls `server` has started: finished ones plus those in flight."""
    return sum(server_codes(server, method).values()) + in_flight(server, method)


def wait_idle(server: UserServer, timeout: float = 10.0) -> None:
    """Wait until `server` has no call in flight, e.g. before reading its counts; TimeoutError if it stays busy."""
    deadline = time.monotonic() + timeout
    while in_flight(server):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{server.instance_id} still has {in_flight(server)} calls in flight after {timeout} s")
        time.sleep(0.01)


def plot_latencies(stats: ClientStats, method: str, title: str | None = None) -> Figure:
    """A histogram of the latencies a ClientStats interceptor saw for `method`, with its p95 marked."""
    from matplotlib.figure import Figure  # only lessons that plot pay for matplotlib

    summary = stats.snapshot()[method]
    figure = Figure(figsize=(7, 3), layout="constrained")
    axes = figure.add_subplot()
    axes.hist([s * 1000 for s in stats.latencies(method)], bins=30)
    axes.axvline(summary["p95_ms"], color="tab:red", linestyle="--", label=f"p95 {summary['p95_ms']:.1f} ms")
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel("calls")
    axes.legend()
    axes.set_title(title or f"{method.rsplit('/', 1)[-1]}: {summary['codes']}")
    return figure
