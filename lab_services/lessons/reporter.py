"""The learner's side of the classroom board: each checker verdict and checkpoint cell, reported as pass or fail.

    report("02_registration_and_health_checks", "02-ttl", passed=False, detail="the TTL check never passed")

On a classroom hub, every learner's server has LAB_BOARD_URL (the board's API base) and JUPYTERHUB_API_TOKEN (the hub's
token for that learner), which the kernel inherits; the board learns who reports from the token alone. Without
LAB_BOARD_URL (self-paced use) nothing is sent anywhere. A board that is down or refuses costs one short warning per
kernel and never an exception: the lesson goes on.

Two places report: `exercises.check` (every exercise verdict) and, once the facade is imported, an IPython
`post_run_cell` hook for checkpoint cells: cells of `assert` statements, as the lessons' checks cells are.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from lab_services.classroom import BOARD_URL_ENV
from lab_services.classroom.board_store import MAX_DETAIL

# A report is one small POST to the hub on the same machine or network; a board slower than this is down for us.
TIMEOUT = 2.0
CHECKPOINT_NAME_LENGTH = 80

_warned = False


def enabled() -> bool:
    """True when a board is configured for this kernel (LAB_BOARD_URL is set)."""
    return bool(os.environ.get(BOARD_URL_ENV))


def report(lesson: str, check: str, passed: bool, detail: str = "") -> bool:
    """Send one result to the board; True when the board stored it. Does nothing (False) without LAB_BOARD_URL, and
    never raises: a failure prints one warning per kernel."""
    base = os.environ.get(BOARD_URL_ENV)
    if not base:
        return False
    body = json.dumps({"lesson": lesson, "check": check, "passed": bool(passed), "detail": detail[:MAX_DETAIL]})
    request = urllib.request.Request(
        base.rstrip("/") + "/results",
        data=body.encode(),
        method="POST",
        headers={
            "Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status == 201
    except urllib.error.HTTPError as err:
        _warn_once(f"the board refused the report (HTTP {err.code}: {_error_text(err)})")
    except Exception as err:  # A lesson must go on whatever happens to the board: timeouts, refusals, bad URLs.
        _warn_once(f"the board at {base} did not answer ({type(err).__name__}: {err})")
    return False


def _error_text(err: urllib.error.HTTPError) -> str:
    try:
        return json.loads(err.read()).get("error", "")
    except Exception:  # Any body at all: the status code is the news.
        return err.reason


def _warn_once(message: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        print(f"classroom board: {message}; your results are not reported, the lesson goes on", file=sys.stderr)


def current_lesson() -> str:
    """The lesson this kernel runs: the notebook's name (Jupyter gives a notebook's kernel JPY_SESSION_NAME, its path),
    or "" outside a notebook."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    return Path(session).stem if session else ""


def report_verdict(verdict: Any) -> None:
    """Report an exercise checker's verdict; the lesson is the notebook's, or the exercise's number outside one."""
    if enabled():
        lesson = current_lesson() or verdict.exercise.split("-", 1)[0]
        report(lesson, verdict.exercise, verdict.ok, verdict.message)


def checkpoint_name(source: str) -> str | None:
    """The check a cell is, when it is a checkpoint: "checkpoint: <its first assert's condition>", which stays the same
    each time the cell runs. A checkpoint is what the lessons' checks cells are: `assert` statements (some in a `for`
    loop over what they check), perhaps with assignments that name what they compare and a closing print(), and
    nothing else. None for any other cell."""
    try:
        module = ast.parse(source)
    except (SyntaxError, ValueError):  # ValueError: a NUL byte in the cell
        return None
    asserts = sorted(
        (node for node in ast.walk(module) if isinstance(node, ast.Assert)), key=lambda a: (a.lineno, a.col_offset)
    )
    if not asserts or not all(_fits_a_checkpoint(statement) for statement in module.body):
        return None
    condition = ast.unparse(asserts[0].test)
    if len(condition) > CHECKPOINT_NAME_LENGTH:
        condition = condition[: CHECKPOINT_NAME_LENGTH - 1] + "…"
    return f"checkpoint: {condition}"


def _fits_a_checkpoint(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.Assert | ast.Assign | ast.AnnAssign):
        return True
    if isinstance(statement, ast.For):
        return not statement.orelse and all(_fits_a_checkpoint(inner) for inner in statement.body)
    call = statement.value if isinstance(statement, ast.Expr) else None
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print"


def _after_cell(result: Any) -> None:
    """IPython's post_run_cell: report a checkpoint cell's outcome (an exception in it is a failure)."""
    name = checkpoint_name(result.info.raw_cell or "")
    if name is None:
        return
    error = result.error_before_exec or result.error_in_exec
    detail = "" if error is None else f"{type(error).__name__}: {error}"
    report(current_lesson() or "notebook", name, error is None, detail)


def watch_checkpoints(shell: Any = None) -> bool:
    """Report checkpoint cells from now on in this IPython kernel, when a board is configured; True if watching.
    Registered once per kernel however often it is called."""
    if not enabled():
        return False
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None:
        return False
    if _after_cell not in shell.events.callbacks["post_run_cell"]:
        shell.events.register("post_run_cell", _after_cell)
    return True
