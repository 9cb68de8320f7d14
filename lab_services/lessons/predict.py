"""Predict-then-observe questions: ask before the experiment, reveal after it, and record the verdict.

    lab.predict("02.dcsa", "What does Consul do with DeregisterCriticalServiceAfter=30s?",
                ["refuses it", "raises it to 1m", "keeps 30s"])
    ... the experiment runs ...
    lab.reveal("02.dcsa", "raises it to 1m", "the agent logs 'check has deregister interval below minimum'")

A guess is locked in with a button so it cannot drift after the learner has seen the result; the verdict
goes through `exercises.check("predict", ...)`, like any exercise's.
"""

from __future__ import annotations

from html import escape

import ipywidgets as widgets
from IPython.display import display

from lab_services.lessons import exercises
from lab_services.lessons.exercises.verdict import Verdict


class Prediction:
    """One question: radio buttons for the choices, a button that locks the guess in, and the answer once revealed."""

    def __init__(self, key: str, question: str, choices: list[str]):
        if not key or not isinstance(key, str):
            raise ValueError(f"predict: key must be a non-empty string such as '02.dcsa', not {key!r}")
        if len(choices) < 2 or len(set(choices)) != len(choices):
            raise ValueError(f"predict {key}: choices must be two or more distinct answers, got {choices!r}")
        self.key = key
        self.question = question
        self.choices = list(choices)
        self.guess: str | None = None
        self.verdict: Verdict | None = None
        self.options = widgets.RadioButtons(options=self.choices, value=None, layout={"width": "max-content"})
        self.lock_button = widgets.Button(description="lock in my guess", icon="lock")
        self.result = widgets.HTML("<i>pick an answer and lock it in before running the experiment</i>")
        self.lock_button.on_click(self.lock)
        self.widget = widgets.VBox(
            [
                widgets.HTML(f"<b>Predict ({escape(key)}):</b> {escape(question)}"),
                self.options,
                self.lock_button,
                self.result,
            ]
        )

    def lock(self, _: object = None) -> None:
        """Freeze the chosen answer: what counts is the guess made before the experiment ran."""
        if self.options.value is None:
            self.result.value = "<i>choose one of the answers first</i>"
            return
        self.guess = self.options.value
        self.options.disabled = self.lock_button.disabled = True
        self.result.value = f"locked in: <b>{escape(self.guess)}</b>; now run the experiment"

    def reveal(self, answer: str, why: str) -> Verdict:
        """Show the answer the experiment gave and record the verdict on the guess."""
        if answer not in self.choices:
            raise ValueError(f"reveal {self.key}: answer {answer!r} is not one of the choices {self.choices!r}")
        self.options.disabled = self.lock_button.disabled = True
        self.verdict = exercises.check(exercises.predictions.NAME, self.key, self.guess, answer, why)
        self.result.value = self.verdict._repr_html_()
        return self.verdict

    def _ipython_display_(self) -> None:
        display(self.widget)

    def __repr__(self) -> str:
        return f"Predict ({self.key}): {self.question} " + " / ".join(self.choices)


_asked: dict[str, Prediction] = {}


def predict(key: str, question: str, choices: list[str]) -> Prediction:
    """Ask `question` with `choices` before an experiment; asking the same key again starts the question afresh."""
    _asked[key] = Prediction(key, question, choices)
    return _asked[key]


def reveal(key: str, answer: str, why: str) -> None:
    """After the experiment: show `answer` and `why` under the question `key`, and display the verdict on the guess."""
    if key not in _asked:
        raise KeyError(
            f"reveal: no question {key!r} was asked in this kernel; run its lab.predict(...) cell first "
            f"(asked: {', '.join(_asked) or 'none'})"
        )
    display(_asked[key].reveal(answer, why))


def asked(key: str) -> Prediction:
    """The question asked under `key` (for tests and for an instructor reading the room's guesses)."""
    return _asked[key]


__all__ = ["Prediction", "asked", "predict", "reveal"]
