"""A progress bar for long work in a notebook, so a cell that takes a minute is not silent.

    bar = lab.ProgressBar("drills")                  # a notebook: an ipywidgets bar with the current step
    lab.drills.removal_comparison(cluster, settings, progress=bar)

It is a `core.progress.OnStep` callable, the shape the drills and benchmarks accept (the CLI passes
`core.progress.StderrProgress`).
"""

from __future__ import annotations

import ipywidgets as widgets
from IPython.display import display


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
