"""The progress board's memory: every reported result in one sqlite file, and the board's summary of them.

A result is (learner, lesson, check, passed, detail, when). The learner and the time come from the service (the
hub's answer for the token, the clock at arrival), never from the learner's body; `parse_result` reads only the
four fields a learner may choose and says which one is wrong.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab_services.core.errors import BadInputError

# Bounds that keep one learner's notebook from filling the instructor's disk or board with one report.
MAX_NAME = 200
MAX_DETAIL = 2000

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    learner TEXT NOT NULL,
    lesson TEXT NOT NULL,
    check_name TEXT NOT NULL,
    passed INTEGER NOT NULL,
    detail TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_by_learner ON results (learner, id);
"""


@dataclass(frozen=True)
class Report:
    """What a learner may say about one check: the lesson, the check, the outcome and a short why."""

    lesson: str
    check: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class Result(Report):
    """A stored report: who sent it (from the hub) and when it arrived (seconds since the epoch)."""

    learner: str = ""
    at: float = 0.0


def parse_result(body: Any) -> Report:
    """The report in a learner's JSON body, or BadInputError naming the field. Other fields (a `learner` too) are
    never read: the learner is whoever the hub says the token belongs to."""
    if not isinstance(body, dict):
        raise BadInputError(
            f"invalid argument: body: a JSON object {{lesson, check, passed, detail?}}, not {type(body).__name__}"
        )
    fields = {}
    for name in ("lesson", "check"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            raise BadInputError(f"invalid argument: {name}: a non-empty string is required, got {value!r}")
        if len(value) > MAX_NAME:
            raise BadInputError(f"invalid argument: {name}: at most {MAX_NAME} characters, got {len(value)}")
        fields[name] = value.strip()
    passed = body.get("passed")
    if not isinstance(passed, bool):
        raise BadInputError(f"invalid argument: passed: true or false is required, got {passed!r}")
    detail = body.get("detail", "")
    if not isinstance(detail, str):
        raise BadInputError(f"invalid argument: detail: a string is required, got {type(detail).__name__}")
    if len(detail) > MAX_DETAIL:
        raise BadInputError(f"invalid argument: detail: at most {MAX_DETAIL} characters, got {len(detail)}")
    return Report(fields["lesson"], fields["check"], passed, detail)


class ResultStore:
    """Results in one sqlite file. Used from the service's one event-loop thread; each call commits."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path)
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, learner: str, report: Report, at: float | None = None) -> Result:
        result = Result(**asdict(report), learner=learner, at=time.time() if at is None else at)
        with self._db:
            self._db.execute(
                "INSERT INTO results (learner, lesson, check_name, passed, detail, at) VALUES (?, ?, ?, ?, ?, ?)",
                (learner, result.lesson, result.check, int(result.passed), result.detail, result.at),
            )
        return result

    def for_learner(self, learner: str) -> list[Result]:
        """One learner's results, oldest first."""
        rows = self._db.execute(
            "SELECT lesson, check_name, passed, detail, learner, at FROM results WHERE learner = ? ORDER BY id",
            (learner,),
        )
        return [Result(lesson, check, bool(passed), detail, who, at) for lesson, check, passed, detail, who, at in rows]

    def board(self, stuck_after: float, now: float | None = None) -> dict[str, Any]:
        """The instructor's view: per learner their latest report and whether they are stuck (their latest check has
        failed without a pass in between for more than `stuck_after` seconds), and per check how many learners
        tried it and how many passed it."""
        now = time.time() if now is None else now
        learners = []
        latest_rows = self._db.execute(
            "SELECT learner, lesson, check_name, passed, detail, at FROM results WHERE id IN "
            "(SELECT MAX(id) FROM results GROUP BY learner) ORDER BY learner"
        ).fetchall()
        for learner, lesson, check, passed, detail, at in latest_rows:
            failing_since = None if passed else self._failing_since(learner, lesson, check)
            learners.append(
                {
                    "learner": learner,
                    "lesson": lesson,
                    "check": check,
                    "passed": bool(passed),
                    "detail": detail,
                    "at": at,
                    "failing_since": failing_since,
                    "stuck": failing_since is not None and now - failing_since > stuck_after,
                }
            )
        checks = [
            {"lesson": lesson, "check": check, "tried": tried, "passed": passed}
            for lesson, check, tried, passed in self._db.execute(
                "SELECT lesson, check_name, COUNT(DISTINCT learner), COUNT(DISTINCT CASE WHEN passed THEN learner END) "
                "FROM results GROUP BY lesson, check_name ORDER BY lesson, check_name"
            )
        ]
        return {"now": now, "stuck_after": stuck_after, "learners": learners, "checks": checks}

    def _failing_since(self, learner: str, lesson: str, check: str) -> float:
        """When the current run of failures of this check began: the first failure after its last pass."""
        (since,) = self._db.execute(
            "SELECT MIN(at) FROM results WHERE learner = ? AND lesson = ? AND check_name = ? AND passed = 0 AND id > "
            "COALESCE((SELECT MAX(id) FROM results WHERE learner = ? AND lesson = ? AND check_name = ? AND passed = 1),"
            " 0)",
            (learner, lesson, check) * 2,
        ).fetchone()
        return since
