"""How a stream ends: completed, cancelled by the client, or out of time (a deadline on a stream)."""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc

from lab_services._proto.lab.user.v1 import user_service_pb2 as pb
from lab_services._proto.lab.user.v1 import user_service_pb2_grpc as pb_grpc
from lab_services.lessons.streaming.resume import ChannelFactory


def stream_outcome(
    address: str,
    *,
    timeout: float | None = None,
    cancel_after: float | None = None,
    interval_ms: int = 100,
    limit: int = 0,
    channel_factory: ChannelFactory = grpc.insecure_channel,
) -> dict[str, Any]:
    """Read a paced ListUsers stream with a deadline (`timeout`) or cancel it after `cancel_after` seconds.

    A deadline covers the whole stream, not each message: a stream that would take longer than
    `timeout` ends DEADLINE_EXCEEDED part-way. Returns {"received", "code", "seconds", "details"}.
    """
    channel = channel_factory(address)
    started = time.monotonic()
    received = 0
    call = pb_grpc.UserServiceStub(channel).ListUsers(
        pb.ListUsersRequest(limit=limit, interval_ms=interval_ms), timeout=timeout
    )
    timer = None
    if cancel_after is not None:
        timer = threading.Timer(cancel_after, call.cancel)
        timer.daemon = True
        timer.start()
    code, details = "OK", ""
    try:
        for _user in call:
            received += 1
    except grpc.RpcError as err:
        code, details = err.code().name, err.details() or ""
    finally:
        if timer is not None:
            timer.cancel()
        channel.close()
    return {"received": received, "code": code, "seconds": round(time.monotonic() - started, 3), "details": details}
