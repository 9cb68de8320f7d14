"""A checker's answer to a learner: right or not yet, and a sentence saying why (with the solution once revealed)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Verdict:
    """The outcome of a checker: `ok`, and a sentence saying what was right or what to change."""

    exercise: str
    ok: bool
    message: str
    solution: str = ""  # filled in only once the instructor has revealed the solutions

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        text = f"{'✔ right' if self.ok else '✘ not yet'} ({self.exercise}): {self.message}"
        return text + (f"\n\nOne solution:\n{self.solution}" if self.solution else "")

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#cf222e"
        outcome = "✔ right" if self.ok else "✘ not yet"
        html = f"<p style='color:{colour}'><b>{outcome}</b> ({self.exercise}): {escape(self.message)}</p>"
        return html + (f"<p>One solution:</p><pre>{escape(self.solution)}</pre>" if self.solution else "")
