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
    if summary.imported != 2 or len(rejected) != 1:
        return Verdict(
            NAME,
            False,
            f"expected 2 imported and 1 rejected, got {summary.imported} imported and "
            f"{len(rejected)} rejected; send three records in one call, one with an empty name or a bad email "
            "(and use emails no earlier run used)",
        )
    reason = rejected[0].reason
    if reason.split(":")[0] not in ("name", "email"):
        return Verdict(
            NAME, False, f"the record was rejected for {reason!r}, not for a bad field; make one record invalid"
        )
    return Verdict(
        NAME, True, f"one call, three records: record {rejected[0].index} was refused ({reason}) and the rest kept"
    )


def import_three(stub: Any) -> Any:
    """Three users in one ImportUsers call, the second one invalid (an empty name); fresh emails each run."""
    tag = uuid.uuid4().hex[:8]
    records = [
        user_pb2.CreateUserRequest(name="Grace", email=f"grace-{tag}@example.com"),
        user_pb2.CreateUserRequest(name="", email=f"nobody-{tag}@example.com"),
        user_pb2.CreateUserRequest(name="Linus", email=f"linus-{tag}@example.com"),
    ]
    return stub.ImportUsers(iter(records))


SOLUTION = import_three
