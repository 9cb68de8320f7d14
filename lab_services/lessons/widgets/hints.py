"""Graded help for an exercise: hint 1, then hint 2, then one solution, each revealed by its own click.

    lab.hints("02-ttl")          # in the cell before the exercise: one button that says what it will show next

The hints live beside each exercise's checker (`HINTS` in lessons/exercises/lesson_NN.py) and the solution is the
source of the function the tests run through that checker, so help and judge never drift apart.
"""

from __future__ import annotations

from html import escape

import ipywidgets as widgets
from IPython.display import display

from lab_services.lessons import exercises


class HintLadder:
    """One exercise's help, one step per click: a learner asks for exactly as much as they need, in order."""

    def __init__(self, exercise: str):
        self.exercise = exercise
        self.steps = exercises.hints(exercise)  # [hint 1, hint 2, solution source]
        self.shown = 0
        self.button = widgets.Button(icon="lightbulb-o")
        self.revealed = widgets.HTML()
        self.button.on_click(self.next)
        self.widget = widgets.VBox(
            [
                widgets.HTML(f"<b>Stuck on {escape(exercise)}?</b> One hint at a time; the solution comes last."),
                self.button,
                self.revealed,
            ]
        )
        self._label()

    def _label(self) -> None:
        titles = [*(f"show hint {n}" for n in range(1, len(self.steps))), "show the solution"]
        self.button.disabled = self.shown == len(self.steps)
        self.button.description = "everything is shown" if self.button.disabled else titles[self.shown]

    def next(self, _: object = None) -> str:
        """Reveal the next step (nothing more once the solution is shown); returns the text now shown last."""
        if self.shown < len(self.steps):
            self.shown += 1
        shown = self.steps[: self.shown]
        solution = shown.pop() if self.shown == len(self.steps) else ""
        html = "".join(f"<p><b>Hint {n}.</b> {escape(text)}</p>" for n, text in enumerate(shown, 1))
        self.revealed.value = html + (f"<p><b>One solution:</b></p><pre>{escape(solution)}</pre>" if solution else "")
        self._label()
        return self.steps[self.shown - 1]

    def _ipython_display_(self) -> None:
        display(self.widget)

    def __repr__(self) -> str:
        return f"hints for {self.exercise}: {self.shown} of {len(self.steps)} shown"


def hints(exercise: str) -> HintLadder:
    """The graded help for `exercise` (e.g. "02-ttl"), as a button under the exercise's text."""
    return HintLadder(exercise)
