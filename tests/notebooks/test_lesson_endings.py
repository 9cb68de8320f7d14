"""Every lesson ends the same way: "What you saw, and why", then a short Chinese summary of it (## 小结) for the
learners who come from the Chinese reference articles; and where a lesson measures timings, its "What you saw" shows
the learner's own figures beside the expected ranges instead of stating fixed numbers.

Reads the notebooks only; the headless runs (test_lessons_*.py) execute the cells.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lab_services.core.paths import REPO_DIR

LESSONS = sorted((REPO_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SAW = "## What you saw, and why"
SUMMARY = "## 小结"
# The lessons whose "What you saw" reads timings the learner's run measured (issue 21, item 7).
MEASURING = ("10", "12", "13", "14")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _cells(path: Path) -> list[dict]:
    return [{**c, "text": "".join(c["source"])} for c in json.loads(path.read_text())["cells"]]


def _saw_index(cells: list[dict]) -> int:
    found = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and c["text"].startswith(SAW)]
    assert len(found) == 1, f"expected one markdown cell starting {SAW!r}, found {len(found)}"
    return found[0]


def test_there_are_lessons():
    assert LESSONS, f"no lessons in {REPO_DIR / 'notebooks'}"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_what_you_saw_is_followed_by_a_chinese_summary(path: Path):
    cells = _cells(path)
    saw = _saw_index(cells)
    after = [c for c in cells[saw + 1 :] if c["cell_type"] == "markdown"]
    assert after and after[0]["text"].startswith(SUMMARY), (
        f"{path.name}: the first markdown cell after {SAW!r} must be the Chinese summary, starting {SUMMARY!r}"
    )
    bullets = [line for line in after[0]["text"].splitlines() if line.startswith("- ")]
    assert 3 <= len(bullets) <= 6, f"{path.name}: the summary has {len(bullets)} bullet lines; write 3 to 6"
    not_chinese = [b for b in bullets if not CJK.search(b)]
    assert not not_chinese, f"{path.name}: summary lines without Chinese: {not_chinese}"


@pytest.mark.parametrize("number", MEASURING)
def test_a_measuring_lesson_shows_the_learners_figures_with_their_ranges(number: str):
    [path] = [p for p in LESSONS if p.name.startswith(number)]
    cells = _cells(path)
    saw = _saw_index(cells)
    # The figures cell sits right before the heading (after the exercise) or inside the section, before the summary.
    near = [c for c in cells[saw - 1 : saw + 3] if c["cell_type"] == "code"]
    assert any("what_you_saw(" in c["text"] for c in near), (
        f"{path.name}: 'What you saw' should show the run's own figures through the lesson module's what_you_saw()"
    )
    assert "yours took" not in cells[saw]["text"] and not re.search(r"\bafter about \d", cells[saw]["text"]), (
        f"{path.name}: 'What you saw' states a fixed figure; the figures table shows the learner's own"
    )
