"""Lesson 01's exercise: import three users in one client-streaming call, one of them invalid.

The checker says right or wrong and why; `import_three` is one solution."""

from __future__ import annotations

import uuid
from typing import Any

from lab_services.lessons.exercises.verdict import Verdict
from lab_services.service import user_pb2

NAME = "01-import"


def check(summary: Any) -> Verdict:
    """01-import: an ImportSummary from one ImportUsers call of three users, exactly one of them invalid."""
    if summary is None or not hasattr(summary, "imported"):
        return Verdict(NAME, False, "return the ImportSummary that stub.ImportUsers(...) answers")
    rejected = list(summary.rejected)
    wrong = _miscount(summary.imported, rejected)
    if wrong:
        return Verdict(NAME, False, f"{summary.imported} imported and {len(rejected)} rejected: {wrong}")
    reason = rejected[0].reason
    if reason.split(":")[0] not in ("name", "email"):
        return Verdict(
            NAME, False, f"the record was rejected for {reason!r}, not for a bad field; make one record invalid"
        )
    return Verdict(
        NAME, True, f"one call, three records: record {rejected[0].index} was refused ({reason}) and the rest kept"
    )


def _miscount(imported: int, rejected: list[Any]) -> str:
    """What is wrong with a summary of `imported` users and `rejected` records ('' when it is 2 and 1)."""
    sent = imported + len(rejected)
    reasons = "; ".join(f"record {r.index}: {r.reason}" for r in rejected)
    if sent != 3:
        return f"the call carried {sent} records; send exactly three in one ImportUsers call"
    if not rejected:
        return "none was invalid; give one record an empty name or an email that is not an address"
    if len(rejected) > 1:
        reused = (
            " (an email an earlier run already used is refused too: make every email new)"
            if "already used" in reasons
            else ""
        )
        return f"only one record should be invalid, but the server refused {reasons}{reused}"
    return ""


def import_three(stub: Any) -> Any:
    """Three users in one ImportUsers call, the second one invalid (an empty name); fresh emails each run."""
    tag = uuid.uuid4().hex[:8]
    records = [
        user_pb2.CreateUserRequest(name="Grace", email=f"grace-{tag}@example.com"),
        user_pb2.CreateUserRequest(name="", email=f"nobody-{tag}@example.com"),
        user_pb2.CreateUserRequest(name="Linus", email=f"linus-{tag}@example.com"),
    ]
    return stub.ImportUsers(iter(records))


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "ImportUsers is client-streaming: you pass an iterator of requests, and the server answers once, with"
        " an ImportSummary, after the last one. A record is refused for an empty name or an email without "
        "'@'."
    ),
    (
        'Build three `lab.user_pb2.CreateUserRequest(name=..., email=...)`, one of them with `name=""`, put a'
        " fresh suffix in every email (`uuid.uuid4().hex[:8]`), and return `stub.ImportUsers(iter(records))`."
    ),
)

SOLUTION = import_three
