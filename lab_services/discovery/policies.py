"""Client-side balancing policies: given the instances a call may use, pick one.

Each policy sees `InstanceStats` (the instance plus its live counters) so it can balance on load as
well as on order. They are what lesson 03 compares: round robin, random, weighted (meta 'weight'),
least outstanding requests, and power of two choices (two random instances, the less busy one wins).
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
from dataclasses import dataclass

from lab_services.core.instance import ServiceInstance

log = logging.getLogger(__name__)


@dataclass
class InstanceStats:
    """Counters of one instance in a channel; `ejected_until` is a time.monotonic() deadline (0 when not ejected)."""

    instance: ServiceInstance
    calls: int = 0
    failures: int = 0
    in_flight: int = 0
    ejected_until: float = 0.0

    @property
    def id(self) -> str:
        return self.instance.id


class Policy:
    """Picks one of a non-empty list of candidates, sorted by instance id. Thread-safe."""

    name = ""

    def __init__(self, rng: random.Random | None = None):
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    def pick(self, candidates: list[InstanceStats]) -> InstanceStats:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class RoundRobin(Policy):
    """Each call goes to the next instance in id order."""

    name = "round_robin"

    def __init__(self, rng: random.Random | None = None):
        super().__init__(rng)
        self._counter = itertools.count()

    def pick(self, candidates: list[InstanceStats]) -> InstanceStats:
        with self._lock:
            return candidates[next(self._counter) % len(candidates)]


class Random(Policy):
    """Each call goes to an instance chosen uniformly at random."""

    name = "random"

    def pick(self, candidates: list[InstanceStats]) -> InstanceStats:
        with self._lock:
            return self._rng.choice(candidates)


class Weighted(Policy):
    """Smooth weighted round robin (as in nginx) on meta 'weight': weights 3 and 1 give a a b a, a a b a, ...

    A weight that is not a positive number is logged once per instance and value, and counted as 1.
    """

    name = "weighted"

    def __init__(self, rng: random.Random | None = None, key: str = "weight"):
        super().__init__(rng)
        self.key = key
        self._current: dict[str, float] = {}
        self._warned: set[tuple[str, str]] = set()

    def weight(self, instance: ServiceInstance) -> float:
        text = instance.meta.get(self.key)
        if text is None:
            return 1.0
        try:
            weight = float(text)
            if not weight > 0 or weight == float("inf"):
                raise ValueError
            return weight
        except ValueError:
            if (instance.id, text) not in self._warned:
                self._warned.add((instance.id, text))
                log.warning(
                    "instance %s has meta %s=%r, not a positive number; using weight 1 (register e.g. meta={%r: '3'})",
                    instance.id,
                    self.key,
                    text,
                    self.key,
                )
            return 1.0

    def pick(self, candidates: list[InstanceStats]) -> InstanceStats:
        with self._lock:
            weights = [self.weight(c.instance) for c in candidates]
            total = sum(weights)
            best = None
            for candidate, weight in zip(candidates, weights, strict=True):
                current = self._current.get(candidate.id, 0.0) + weight
                self._current[candidate.id] = current
                if best is None or current > self._current[best.id]:
                    best = candidate
            self._current[best.id] -= total
            # Forget instances that are gone, so the table does not grow with every restart.
            if len(self._current) > 2 * len(candidates):
                ids = {c.id for c in candidates}
                self._current = {k: v for k, v in self._current.items() if k in ids}
            return best


class LeastOutstanding(Policy):
    """Each call goes to the instance with the fewest calls in flight; ties are broken at random."""

    name = "least_outstanding"

    def pick(self, candidates: list[InstanceStats]) -> InstanceStats:
        fewest = min(c.in_flight for c in candidates)
        with self._lock:
            return self._rng.choice([c for c in candidates if c.in_flight == fewest])


class PowerOfTwo(Policy):
    """Two instances chosen at random; the one with fewer calls in flight wins (near least-outstanding at O(1))."""

    name = "p2c"

    def pick(self, candidates: list[InstanceStats]) -> InstanceStats:
        if len(candidates) == 1:
            return candidates[0]
        with self._lock:
            a, b = self._rng.sample(candidates, 2)
        return b if b.in_flight < a.in_flight else a


POLICIES: dict[str, type[Policy]] = {p.name: p for p in (RoundRobin, Random, Weighted, LeastOutstanding, PowerOfTwo)}


def make_policy(name: str | Policy) -> Policy:
    """A policy by name ('round_robin', 'random', 'weighted', 'least_outstanding', 'p2c'); a Policy passes through."""
    if isinstance(name, Policy) or (hasattr(name, "pick") and not isinstance(name, str)):
        return name
    try:
        return POLICIES[name]()
    except (KeyError, TypeError):
        raise ValueError(f"invalid argument: policy: {name!r}; use one of {', '.join(POLICIES)}") from None
