"""Exponential backoff with full jitter: how long to wait before the next retry when a server is unreachable.

Attempt n waits a random time between 0 and min(cap, base * factor**n) (AWS's "full jitter"). The ceiling
doubles so a long outage costs few requests; the randomness spreads retries out so a fleet of instances that
lost the same server does not hammer it in lockstep when it comes back. The lessons plot both, e.g.
`list(itertools.islice(Backoff(base=0.1, cap=2.0), 10))` against `[b.ceiling(n) for n in range(10)]`.
"""

from __future__ import annotations

import random


class Backoff:
    """An endless iterator of retry delays in seconds; `reset()` after a success starts again from `base`."""

    def __init__(self, base: float = 0.2, cap: float = 5.0, factor: float = 2.0, rng: random.Random | None = None):
        if base <= 0 or cap < base or factor < 1:
            raise ValueError(f"need 0 < base <= cap and factor >= 1, got base={base}, cap={cap}, factor={factor}")
        self.base = base
        self.cap = cap
        self.factor = factor
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        """The most attempt number `attempt` (from 0) may wait: the un-jittered exponential curve, capped."""
        try:
            return min(self.cap, self.base * float(self.factor) ** attempt)
        except OverflowError:  # a very long outage: factor**attempt no longer fits in a float
            return self.cap

    def __iter__(self) -> Backoff:
        return self

    def __next__(self) -> float:
        delay = self._rng.uniform(0, self.ceiling(self.attempt))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0

    def __repr__(self) -> str:
        return f"Backoff(base={self.base}, cap={self.cap}, factor={self.factor}, attempt={self.attempt})"
