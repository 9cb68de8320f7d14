"""Deadline propagation on the server side: how long the caller of this call has left.

A server that forwards a call passes `remaining_deadline(context)` on as the forwarded call's timeout, so the
upstream stops when the original caller gives up (lesson 07; `lessons.resilience.gateway` shows both ways).
"""

from __future__ import annotations

import grpc

# A call without a deadline reports the time left until gRPC's "infinite future": decades.
_NO_DEADLINE = 10 * 365 * 24 * 3600.0


def remaining_deadline(context: grpc.ServicerContext) -> float | None:
    """Seconds the caller of this call has left, or None if it set no deadline."""
    remaining = context.time_remaining()
    return None if remaining is None or remaining > _NO_DEADLINE else remaining
