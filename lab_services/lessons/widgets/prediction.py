"""Predict, then observe: a question with choices asked before an experiment, answered by what the lab measured."""
from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from lab_services.lessons.exercises.verdict import Verdict


class Prediction:
    """A choice the learner makes before running a cell; `reveal(observed)` compares it with what the lab showed.

    The observed choice comes from the measurement (the notebook computes it), so the reveal can never disagree
    with the numbers on the screen.
    """

    def __init__(self, key: str, question: str, choices: list[str]):
        if len(set(choices)) < 2:
            raise ValueError(f"invalid argument: choices: a prediction needs two or more different choices, got {choices!r}")
        self.key, self.question, self.choices = key, question, list(choices)
        self.picker = widgets.RadioButtons(options=self.choices, value=None, layout={"width": "max-content"})
        self.widget = widgets.VBox([widgets.HTML(f"<b>Predict:</b> {question}"), self.picker])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def reveal(self, observed: str, why: str) -> Verdict:
        """What the lab showed (one of the choices), against the learner's pick, with the reason."""
        if observed not in self.choices:
            raise ValueError(f"invalid argument: observed: {observed!r} is not one of the choices {self.choices}")
        picked = self.picker.value
        if picked is None:
            return Verdict(self.key, False, f"no prediction was made. The lab showed: {observed}. {why}")
        said = "right" if picked == observed else f"you predicted {picked!r}"
        return Verdict(self.key, picked == observed, f"{said}. The lab showed: {observed}. {why}")
