"""Progress for long work: what runs now and how far it is, so a command or a cell that takes a minute is not silent.

Long work (drills, benchmarks) accepts any `progress(done, total, step)` callable (`OnStep`). The CLI passes
`StderrProgress`, one rewritten line on stderr; a notebook passes `lessons.progress.ProgressBar`, an ipywidgets
bar. Both shapes live apart so the CLI and the benchmarks load no widget code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

OnStep = Callable[[int, int, str], None]  # progress(done, total, what runs now): what long work reports


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
