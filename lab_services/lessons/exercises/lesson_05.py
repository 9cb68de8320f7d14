"""Lesson 05's exercise: resume a watch stream without gaps or repeats.

The checker says right or wrong and why; `next_request` is one solution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from lab_services.lessons.exercises.verdict import Verdict
from lab_services.service import UserServer, user_pb2, user_pb2_grpc

NAME = "05-resume"


def check(next_request: Callable[[list[int]], Any]) -> Verdict:
    """05-resume: `next_request(received)` builds the WatchUsersRequest that resumes after the sequences received."""
    name = NAME
    if not callable(next_request):
        return Verdict(
            name, False, f"define next_request(received) returning a user_pb2.WatchUsersRequest; got {next_request!r}"
        )
    server = UserServer(name="exercise05").start()
    try:
        for n in range(5):
            server.store.create(f"user {n}", f"resume{n}@example.org")

        def delivered(request: Any) -> list[int]:
            with grpc.insecure_channel(server.address) as channel:
                call = user_pb2_grpc.UserServiceStub(channel).WatchUsers(request, timeout=0.5)
                got = []
                try:
                    got.extend(event.sequence for event in call)
                except grpc.RpcError as err:
                    if err.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                        raise
                return got

        resumed = next_request([1, 2, 3])
        if not isinstance(resumed, user_pb2.WatchUsersRequest):
            return Verdict(name, False, f"next_request returned {resumed!r}; return a user_pb2.WatchUsersRequest")
        got = delivered(resumed)
        if got != [4, 5]:
            hint = (
                "since_sequence is the last sequence you saw, not the next one you want"
                if got == [5]
                else "resume from the last sequence you saw, so nothing is delivered twice"
                if got[:1] and got[0] <= 3
                else "set since_sequence to the last sequence received"
            )
            return Verdict(name, False, f"after receiving 1, 2, 3 the server sent {got}; expected [4, 5]: {hint}")
        fresh = next_request([])
        if not isinstance(fresh, user_pb2.WatchUsersRequest) or fresh.HasField("since_sequence"):
            got = delivered(fresh) if isinstance(fresh, user_pb2.WatchUsersRequest) else []
            return Verdict(
                name,
                False,
                f"with nothing received yet, leave since_sequence unset (it is optional); "
                f"setting it replays history: the server sent {got}",
            )
        return Verdict(name, True, "resumed after 3 with exactly 4 and 5, and a fresh watch asks only for new changes")
    finally:
        server.stop(0)


def next_request(received: list[int]) -> Any:
    """Resume a watch after the sequences already received; with none, ask only for new changes."""
    if not received:
        return user_pb2.WatchUsersRequest()  # only new changes
    return user_pb2.WatchUsersRequest(since_sequence=max(received))


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    ("`since_sequence` asks the server for every change after that sequence. Which sequence do you already have?"),
    (
        "With events received, return `WatchUsersRequest(since_sequence=max(received))`; with none, a plain "
        "`WatchUsersRequest()`: since_sequence is optional, and setting it (even to 0) replays history."
    ),
)

SOLUTION = next_request
