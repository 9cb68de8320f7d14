"""Progress for long work: what runs now and how far it is, so a cell or a command that takes a minute is not silent.

    bar = lab.ProgressBar("drills")                  # a notebook: an ipywidgets bar with the current step
    lab.drills.removal_comparison(cluster, settings, progress=bar)
    line = StderrProgress.for_terminal(json_output)  # the CLI: one rewritten line on stderr, only on a terminal

Both are `progress(done, total, step)` callables, the shape the drills and benchmarks accept.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

import ipywidgets as widgets
from IPython.display import display

OnStep = Callable[[int, int, str], None]  # progress(done, total, what runs now): what long work reports


class ProgressBar:
    """An ipywidgets bar and a label with the current step; displays itself when made (one line in a cell)."""

    def __init__(self, description: str = "", show: bool = True):
        self.bar = widgets.IntProgress(
            value=0, min=0, max=1, description=description, layout=widgets.Layout(width="40%")
        )
        self.label = widgets.Label("starting")
        self.box = widgets.HBox([self.bar, self.label])
        self.steps: list[str] = []  # every step reported, so a test (or a curious learner) can read them back
        if show:
            display(self.box)

    def __call__(self, done: int, total: int, step: str) -> None:
        self.bar.max = max(total, 1)
        self.bar.value = min(done, self.bar.max)
        self.label.value = f"{done}/{total} · {step}"
        self.steps.append(step)

    def _ipython_display_(self) -> None:
        display(self.box)


class StderrProgress:
    """`[3/6] step` rewritten in place on stderr; silent when disabled (under --json, or stderr is not a terminal)."""

    def __init__(self, enabled: bool, stream: TextIO | None = None):
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self._width = 0

    @classmethod
    def for_terminal(cls, json_output: bool, force: bool = False, stream: TextIO | None = None) -> StderrProgress:
        """On when stderr is a terminal (or `force`), off under --json: machine output stays clean."""
        stream = stream if stream is not None else sys.stderr
        return cls(not json_output and (force or stream.isatty()), stream)

    def __call__(self, done: int, total: int, step: str) -> None:
        if not self.enabled:
            return
        text = f"[{done}/{total}] {step}"
        self.stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        if done >= total:
            self.stream.write("\n")
            self._width = 0
        self.stream.flush()

    def done(self) -> None:
        """End the line (also after an interrupt), so the shell prompt does not land on it."""
        if self.enabled and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
