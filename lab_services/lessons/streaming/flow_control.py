"""Flow control on Chat: a slow reader makes a fast writer wait (HTTP/2 windows), measured and plotted."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from lab_services._proto.lab.user.v1 import user_service_pb2 as pb
from lab_services._proto.lab.user.v1 import user_service_pb2_grpc as pb_grpc
from lab_services.lessons.streaming.resume import ChannelFactory


@dataclass(frozen=True)
class FlowSample:
    """At `t` seconds, the sender had handed `sent` messages to gRPC and the reader had read `read` replies."""

    t: float
    sent: int
    read: int


def backpressure_experiment(
    address: str,
    seconds: float = 3.0,
    read_every: float = 0.02,
    message_bytes: int = 32_000,
    fast_for: float = 0.0,
    channel_factory: ChannelFactory = grpc.insecure_channel,
) -> dict[str, Any]:
    """A Chat where the sender sends as fast as gRPC lets it and the reader reads one reply every `read_every` s.

    gRPC asks the request iterator for the next message only once the previous one was written, and the
    server answers each message before reading the next; when the reader falls behind, the reply buffers
    fill, the server blocks in `yield`, stops reading, and the sender's writes stall: the sender can never
    get further ahead than what the HTTP/2 flow-control windows and socket buffers hold. The first
    `fast_for` seconds the reader keeps up, so you see the sender slow down when the reader does.

    Returns {"samples": [FlowSample], "sent", "read", "max_ahead", "ahead_at_end", "sender_rate", "reader_rate",
    "fast_sender_rate", "sender_stalled", ...}; rates are messages per second over the second half of the run.
    Long on purpose: the sender, the reader and the sampler share one stop event and two counters, and reading
    them as closures in one place shows the whole experiment at once.
    """
    text = "x" * message_bytes
    stop = threading.Event()
    counts = {"sent": 0, "read": 0}

    def requests() -> Iterator[pb.ChatMessage]:
        while not stop.is_set():
            counts["sent"] += 1  # counted when gRPC asks for it: the previous message has been written
            yield pb.ChatMessage(sender="fast sender", text=text)

    samples: list[FlowSample] = []
    channel = channel_factory(address)
    started = time.monotonic()
    call = pb_grpc.UserServiceStub(channel).Chat(requests(), timeout=seconds + 10)

    def sampler() -> None:
        while not stop.is_set():
            samples.append(FlowSample(round(time.monotonic() - started, 3), counts["sent"], counts["read"]))
            stop.wait(0.05)

    thread = threading.Thread(target=sampler, name="backpressure-sampler", daemon=True)
    thread.start()
    try:
        for _reply in call:
            counts["read"] += 1
            elapsed = time.monotonic() - started
            if elapsed >= seconds:
                break
            if elapsed >= fast_for:
                time.sleep(read_every)
    finally:
        stop.set()
        call.cancel()
        thread.join()
        channel.close()
    samples.append(FlowSample(round(time.monotonic() - started, 3), counts["sent"], counts["read"]))
    ahead = [s.sent - s.read for s in samples]
    fast = [s for s in samples if s.t <= fast_for] or samples[:1]
    tail = [s for s in samples if s.t >= seconds / 2] or samples[-2:]
    sender_gain, reader_gain = tail[-1].sent - tail[0].sent, tail[-1].read - tail[0].read
    sender_rate = sender_gain / max(1e-9, tail[-1].t - tail[0].t)
    reader_rate = reader_gain / max(1e-9, tail[-1].t - tail[0].t)
    return {
        "samples": samples,
        "sent": counts["sent"],
        "read": counts["read"],
        "max_ahead": max(ahead),
        "ahead_at_end": ahead[-1],
        "buffered_kb": round(max(ahead) * message_bytes / 1024),
        "fast_sender_rate": round(fast[-1].sent / max(1e-9, fast[-1].t), 1) if fast_for else None,
        "reader_rate": round(reader_rate, 1),
        "sender_rate": round(sender_rate, 1),
        # Over the second half the sender is held near the reader's pace, far below what it managed unhindered.
        # It writes in bursts as window updates arrive (and the windows may still grow a little, as gRPC's
        # bandwidth probing enlarges them), so the margin is wide and the span long: one burst of about fifty
        # messages at the end of a one-second span made a loaded CI machine read 103/s against 48/s.
        "sender_stalled": sender_rate <= 2 * reader_rate + 5,
    }


def plot_flow(result: dict[str, Any]):
    """Sender and reader progress over time from `backpressure_experiment`: the gap is what the buffers hold."""
    from matplotlib.figure import Figure

    samples = result["samples"]
    figure = Figure(figsize=(7, 3.5), layout="constrained")
    axes = figure.add_subplot()
    axes.plot([s.t for s in samples], [s.sent for s in samples], label="messages the sender got out")
    axes.plot([s.t for s in samples], [s.read for s in samples], label="replies the reader read")
    axes.fill_between(
        [s.t for s in samples],
        [s.read for s in samples],
        [s.sent for s in samples],
        alpha=0.15,
        label="in flow-control windows and buffers",
    )
    axes.set_xlabel("seconds")
    axes.set_ylabel("messages")
    axes.set_title("Backpressure: a slow reader slows the sender")
    axes.legend(loc="upper left")
    return figure


# Deadlines and cancellation on a server stream
