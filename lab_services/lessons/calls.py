"""Small helpers for watching gRPC calls happen: a stream read in the background, a timed chat, a status-code table."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc

from lab_services.core.table import Table
from lab_services.service import user_pb2


class StreamCollector:
    """Read a server stream in a background thread, keeping every message in `items`.

        watch = StreamCollector(stub.WatchUsers(user_pb2.WatchUsersRequest()))
        ...                                  # make changes
        watch.wait_for(2, timeout=5)         # until two events arrived
        watch.stop()                         # cancels the call and ends the thread

    The stream's end (or its error, other than our own cancel) is kept in `error`.
    """

    def __init__(self, call: Any):
        self.call = call
        self.items: list[Any] = []
        self.error: grpc.RpcError | None = None
        self._arrived = threading.Condition()
        self._thread = threading.Thread(target=self._read, name="stream-collector", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for item in self.call:
                with self._arrived:
                    self.items.append(item)
                    self._arrived.notify_all()
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                self.error = err
        finally:
            with self._arrived:
                self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Any]:
        """Block until at least `count` messages arrived; TimeoutError saying how many did, otherwise."""
        with self._arrived:
            done = self._arrived.wait_for(lambda: len(self.items) >= count or not self._thread.is_alive(), timeout)
            if len(self.items) < count:
                ended = f"; the stream ended: {self.error.code().name} {self.error.details()}" if self.error else ""
                why = ended if not self._thread.is_alive() else ("" if done else f" within {timeout:g} s")
                raise TimeoutError(f"expected {count} messages, got {len(self.items)}{why}")
            return list(self.items)

    def stop(self, timeout: float = 5.0) -> list[Any]:
        """Cancel the call (the server sees CANCELLED), wait for the reader to end, and return what arrived."""
        self.call.cancel()
        self._thread.join(timeout)
        return list(self.items)


def chat(stub: Any, texts: Iterable[str], sender: str = "learner", timeout: float = 10.0) -> Table:
    """Send chat messages one at a time, each only after the reply to the previous one arrived.

    Both directions share one call, so the transcript alternates sent, received, sent, received: the
    proof that a bidirectional stream is not a request batch followed by a response batch.
    """
    outbox: queue.SimpleQueue[user_pb2.ChatMessage | None] = queue.SimpleQueue()
    start = time.monotonic()
    transcript: list[dict[str, Any]] = []

    def requests() -> Iterator[user_pb2.ChatMessage]:
        while (message := outbox.get()) is not None:
            transcript.append(
                {
                    "ms": round((time.monotonic() - start) * 1000, 1),
                    "direction": "sent",
                    "text": message.text,
                    "served_by": "",
                }
            )
            yield message

    texts = list(texts)
    replies = stub.Chat(requests(), timeout=timeout)
    for text in texts:
        outbox.put(user_pb2.ChatMessage(sender=sender, text=text))
        reply = next(replies)
        transcript.append(
            {
                "ms": round((time.monotonic() - start) * 1000, 1),
                "direction": "received",
                "text": reply.text,
                "served_by": reply.served_by,
            }
        )
    outbox.put(None)  # ends the request stream, so the server ends its side too
    for _ in replies:
        pass
    return Table(transcript, ["ms", "direction", "text", "served_by"])


def status_of(call: Callable[[], Any]) -> dict[str, str]:
    """Run one call and report how it ended: {'code': 'OK' or the status code's name, 'details': message}."""
    try:
        call()
    except grpc.RpcError as err:
        return {"code": err.code().name, "details": err.details() or ""}
    return {"code": "OK", "details": ""}


def status_table(cases: dict[str, Callable[[], Any]]) -> Table:
    """Run each labelled call and tabulate its status code and message, e.g. for a set of bad requests."""
    return Table([{"call": label, **status_of(call)} for label, call in cases.items()], ["call", "code", "details"])
