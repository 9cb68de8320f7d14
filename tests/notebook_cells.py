"""A lesson's exercise cell, run as a learner who has not answered yet: the blank answer and the check it asks for.

The notebooks run once in the suite, with their solutions revealed (tests/notebooks/test_notebooks.py). What a
learner sees before answering is proven here instead: the cell's own source builds its blank answer
(`return None  # your code here`), the call to `lab.check` is recorded rather than run, and the test runs that
very check against real servers it names itself, so the blank answer's verdict is read in seconds instead of a
second notebook run.
"""

from __future__ import annotations

from typing import Any

import nbformat

from lab_services.core.paths import REPO_DIR

CHECK = "lab.check("


class _RecordingFacade:
    """The lessons facade, except that `check(...)` is written down instead of judged."""

    def __init__(self) -> None:
        from lab_services import lessons

        self._lessons = lessons
        self.calls: list[tuple[str, tuple, dict]] = []

    def check(self, exercise: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((exercise, args, kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lessons, name)


def exercise_cell(lesson: str, exercise: str | None = None) -> str:
    """The source of lesson `lesson`'s (e.g. "05") exercise cell: the code cell that asks for a check whatever
    SHOW_SOLUTION says (a cell that starts with `if SHOW_SOLUTION:` only shows the solution). A lesson with more than
    one exercise (13) names which with `exercise` (e.g. "13-attribute")."""
    [path] = (REPO_DIR / "notebooks").glob(f"{lesson}_*.ipynb")
    asks = CHECK if exercise is None else f'{CHECK}"{exercise}"'
    cells = [
        c.source
        for c in nbformat.read(path, as_version=4).cells
        if c.cell_type == "code" and asks in c.source and not c.source.startswith("if SHOW_SOLUTION")
    ]
    assert len(cells) == 1, f"{path.name}: expected one exercise cell asking for {asks!r}, found {len(cells)}"
    return cells[0]


def unanswered(lesson: str, exercise: str | None = None, **names: Any) -> tuple[str, tuple, dict]:
    """Run the exercise cell (of `exercise`, in a lesson with several) with SHOW_SOLUTION = False; `names` stand in
    for what earlier cells defined (`cluster`, `CONSUL`, `status`, ...). Returns (exercise, args, kwargs) of the one
    check the cell asks for."""
    import grpc

    facade = _RecordingFacade()
    namespace = {"lab": facade, "grpc": grpc, "SHOW_SOLUTION": False, "display": lambda *_: None, **names}
    exec(compile(exercise_cell(lesson, exercise), f"<lesson {lesson} exercise cell>", "exec"), namespace)
    assert len(facade.calls) == 1, f"lesson {lesson}'s exercise cell asked for {len(facade.calls)} checks, expected one"
    return facade.calls[0]
