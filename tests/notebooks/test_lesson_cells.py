"""Every lesson's code cells stay short: a cell reads like a sentence, and longer logic lives in lab_services.lessons.

The notebooks are saved as `ruff format notebooks` leaves them, so the lines counted here are the formatted ones.
"""

from __future__ import annotations

import json

import pytest

from lab_services.core.paths import REPO_DIR

MAX_LINES = 15
LESSONS = sorted((REPO_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def long_cells(path) -> list[str]:
    """'cell 19 (23 lines)' for every code cell of the notebook at `path` longer than MAX_LINES, counted from 0."""
    cells = json.loads(path.read_text())["cells"]
    lengths = [(i, len("".join(c["source"]).splitlines())) for i, c in enumerate(cells) if c["cell_type"] == "code"]
    return [f"cell {i} ({n} lines)" for i, n in lengths if n > MAX_LINES]


def test_there_are_lessons_to_measure():
    assert len(LESSONS) == 16, f"expected lessons 00-15 in {REPO_DIR / 'notebooks'}, found {[p.name for p in LESSONS]}"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_code_cell_is_at_most_15_lines(path):
    too_long = long_cells(path)
    assert not too_long, (
        f"{path.name}: {', '.join(too_long)} longer than {MAX_LINES} lines; move the logic into a documented, tested "
        "function in lab_services/lessons/ (exported by lab_services/lessons/__init__.py) or split the cell"
    )
