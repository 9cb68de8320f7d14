"""Every exercise's graded help: two hints, then the solution, revealed one click at a time, in every notebook."""

from __future__ import annotations

import re
from html import escape

import nbformat
import pytest

from lab_services.core.paths import REPO_DIR
from lab_services.lessons import exercises
from lab_services.lessons.widgets.hints import HintLadder

EXERCISES = [n for n in exercises.names() if n != exercises.LESSONS["predict"].NAME]
CHECKED = re.compile(r'lab\.check\(\s*"([^"]+)"')
HINTED = re.compile(r'lab\.hints\(\s*"([^"]+)"\)')


@pytest.mark.parametrize("name", EXERCISES)
def test_every_exercise_has_two_hints_then_its_solution(name):
    first, second, solution = exercises.hints(name)
    assert first.strip() and second.strip() and first != second, (first, second)
    assert solution == exercises.solution(name), "the last step is the published solution's code"
    # A hint helps without giving the code away: the solution's own function is not in either.
    assert f"def {exercises.LESSONS[name].SOLUTION.__name__}(" not in first + second


def test_the_ladder_reveals_one_step_per_click_and_the_solution_last():
    ladder = HintLadder("02-ttl")
    first, second, solution = exercises.hints("02-ttl")
    assert (ladder.button.description, ladder.revealed.value) == ("show hint 1", "")
    ladder.button.click()
    assert escape(first) in ladder.revealed.value and "Hint 2." not in ladder.revealed.value
    assert ladder.button.description == "show hint 2"
    ladder.button.click()
    assert escape(second) in ladder.revealed.value and "One solution" not in ladder.revealed.value
    assert ladder.button.description == "show the solution"
    assert ladder.next() == solution
    assert "One solution" in ladder.revealed.value and "def my_ttl_registration(" in ladder.revealed.value
    assert ladder.button.disabled and ladder.next() == solution, "nothing is left after the solution"
    assert repr(ladder) == "hints for 02-ttl: 3 of 3 shown"


def test_a_prediction_or_an_unknown_name_has_no_hints():
    with pytest.raises(KeyError, match="a prediction is answered by the experiment"):
        exercises.hints("predict")
    with pytest.raises(KeyError, match="no exercise named '99-nope'"):
        HintLadder("99-nope")


def test_every_notebook_offers_the_hints_of_each_exercise_it_checks_just_before_it():
    offered = []
    for path in sorted((REPO_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        for i, source in enumerate(cells):
            if source.startswith("if SHOW_SOLUTION") or not CHECKED.search(source):
                continue
            name = CHECKED.search(source).group(1)
            assert i and HINTED.findall(cells[i - 1]) == [name], (
                f"{path.name}: the cell before the {name} exercise should be lab.hints({name!r})"
            )
            offered.append(name)
    assert sorted(offered) == EXERCISES, "every exercise is in a notebook, with its hints"


def test_an_answer_that_crashes_is_told_where():
    source = "def my_retry_config(config):\n    return config['methodConfig'][7]\n"
    namespace: dict = {}
    exec(compile(source, "/tmp/learner-cell.py", "exec"), namespace)
    verdict = exercises.check("07-retry", namespace["my_retry_config"])
    assert not verdict and verdict.message.startswith(
        "checking your answer raised IndexError: list index out of range (in your my_retry_config"
    ), verdict.message
