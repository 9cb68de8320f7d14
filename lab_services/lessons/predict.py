"""Predict, then observe: a question with choices asked before an experiment, answered by what it measured.

    guess = Prediction("Which store propagates a write faster?", ["Consul", "etcd", "about the same"])
    guess.widget                                      # the learner picks before running the experiment
    guess.reveal("about the same", "both push the change: a blocking query and a watch")   # after it
"""
from __future__ import annotations

from html import escape

import ipywidgets as widgets

# Every revealed prediction of this kernel: (question, what the learner chose or None, what was observed).
ANSWERS: list[tuple[str, str | None, str]] = []


class Prediction:
    """RadioButtons with no choice made; `reveal(observed, why)` says whether the guess matched the measurement."""

    def __init__(self, question: str, choices: list[str]):
        if len(choices) < 2:
            raise ValueError(f"invalid argument: choices: need at least two, got {choices!r}")
        self.question = question
        self.choices = list(choices)
        self.buttons = widgets.RadioButtons(options=self.choices, value=None, layout={"width": "max-content"})
        self.answer = widgets.HTML()
        self.widget = widgets.VBox([widgets.HTML(f"<b>Predict:</b> {escape(question)}"), self.buttons, self.answer])

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def reveal(self, observed: str, why: str) -> str:
        """Show and record what happened; `observed` must be one of the choices."""
        if observed not in self.choices:
            raise ValueError(f"invalid argument: observed: {observed!r} is not one of {self.choices}")
        chosen = self.buttons.value
        ANSWERS.append((self.question, chosen, observed))
        verdict = ("you did not choose" if chosen is None else
                   "as you predicted" if chosen == observed else f"you predicted {chosen!r}")
        text = f"{self.question} Observed: {observed!r} ({verdict}). {why}"
        self.answer.value = f"<p>{escape(text)}</p>"
        return text
