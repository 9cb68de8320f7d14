"""A learner's own figures beside the range the lab expects, and what a figure outside it means.

Lessons 10, 12, 13 and 14 end with "What you saw, and why": the why is prose, the figures are the learner's run, so
each of those lessons' modules lists its `Expected` figures and builds the table from the variables the lesson
already computed:

    lab.config_centre.what_you_saw(first_delay_ms, results, outages)   # what | yours | expected | reading

A range is what a run on the lab's reference 2-core machine lands in (taken from the lessons' runs in CI and on
laptops, and from the mechanism where it sets a bound), not a pass mark: the checkpoints assert what must hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lab_services.core.errors import BadInputError
from lab_services.core.table import Table

IN_RANGE = "in range"


@dataclass(frozen=True)
class Expected:
    """One figure a lesson measures: its range in `unit`, and what a figure below or above the range tells you."""

    what: str
    unit: str
    low: float
    high: float
    below: str
    above: str

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise BadInputError(f"invalid argument: {self.what}: low {self.low} is above high {self.high}")

    @property
    def range_text(self) -> str:
        """'4-15 s', or '0 calls' when the range is one value: the form the instructor kit quotes."""
        span = _number(self.low) if self.low == self.high else f"{_number(self.low)}-{_number(self.high)}"
        return f"{span} {self.unit}"

    def reading(self, value: float) -> str:
        """'in range', or what a figure below or above the range means."""
        if value < self.low:
            return f"below: {self.below}"
        if value > self.high:
            return f"above: {self.above}"
        return IN_RANGE

    def row(self, value: float) -> dict[str, Any]:
        return {
            "what": self.what,
            "yours": f"{_number(value)} {self.unit}",
            "expected": self.range_text,
            "reading": self.reading(value),
        }


def compare(figures: Iterable[tuple[Expected, float]]) -> Table:
    """One row per (expected, your value): what, yours, expected, reading."""
    return Table([expected.row(value) for expected, value in figures])


def _number(value: float) -> str:
    """A figure as a person reads it: whole numbers without '.0', others to three significant digits at most."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
