"""Plot retry delays: full-jitter samples from registry.backoff.Backoff against the exponential ceiling they stay under.

plot_backoff(base=0.1, cap=2.0, attempts=10)    # a matplotlib Figure; a notebook shows it inline
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from lab_services.core.backoff import Backoff


def sample_delays(
    base: float = 0.1, cap: float = 2.0, factor: float = 2.0, attempts: int = 10, runs: int = 200, seed: int | None = 0
) -> list[list[float]]:
    """`runs` independent retry sequences of `attempts` delays each, in seconds (row = one client's retries)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(runs):
        backoff = Backoff(base=base, cap=cap, factor=factor, rng=rng)
        rows.append([next(backoff) for _ in range(attempts)])
    return rows


def plot_backoff(
    base: float = 0.1, cap: float = 2.0, factor: float = 2.0, attempts: int = 10, runs: int = 200, seed: int | None = 0
) -> Figure:
    """Each dot one sampled delay; the line is the ceiling min(cap, base * factor**n), the dashed line the mean.

    Full jitter spreads the delays evenly between 0 and the ceiling, so clients that failed together
    come back at different times, and on average wait half the ceiling.
    """
    rows = sample_delays(base, cap, factor, attempts, runs, seed)
    ceilings = [Backoff(base=base, cap=cap, factor=factor).ceiling(n) for n in range(attempts)]
    rng = random.Random(seed)
    # Imported here: channels import this package for its breaker, and a service container has no matplotlib.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.add_subplot()
    for n in range(attempts):
        # A little horizontal spread so the dots of one attempt do not sit on top of each other.
        axes.scatter(
            [n + 1 + rng.uniform(-0.15, 0.15) for _ in rows], [row[n] for row in rows], s=6, alpha=0.3, color="tab:blue"
        )
    numbers = range(1, attempts + 1)
    axes.plot(numbers, ceilings, color="tab:red", marker="o", label="ceiling min(cap, base·factor^n)")
    axes.plot(
        numbers,
        [sum(row[n] for row in rows) / len(rows) for n in range(attempts)],
        color="black",
        linestyle="--",
        label="mean of the samples",
    )
    axes.set_xlabel("retry number")
    axes.set_ylabel("delay before the retry (s)")
    axes.set_title(f"Full-jitter backoff: base={base:g} s, cap={cap:g} s, factor={factor:g}, {runs} clients")
    axes.legend(loc="upper left")
    return figure
