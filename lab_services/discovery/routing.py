"""Routing on tags and meta: send a share of calls to canary instances, the rest to the stable ones.

Filtering by tag or meta happens in the watcher (`ConsulWatcher(..., tag="v2", meta={"version": "v2"})`);
`CanarySplit` splits one watcher's instances in two groups by meta and is used as a PickerChannel policy:

    PickerChannel(watcher, policy=CanarySplit(canary_share=0.1))
"""

from __future__ import annotations

import random as _random

from lab_services.core.instance import ServiceInstance
from lab_services.discovery.policies import InstanceStats, Policy, make_policy


def matches(instance: ServiceInstance, meta: dict[str, str]) -> bool:
    """True if the instance carries every key=value of `meta`."""
    return all(instance.meta.get(k) == v for k, v in meta.items())


class CanarySplit(Policy):
    """`canary_share` of calls go to instances matching `canary_meta`, the rest to those matching `stable_meta`.

    Within a group, `inner` (a policy name) picks. If one group has no instance, the other takes every call;
    if neither matches, all candidates are used, so a mislabelled fleet still serves.
    """

    name = "canary"

    def __init__(
        self,
        stable_meta: dict[str, str] | None = None,
        canary_meta: dict[str, str] | None = None,
        canary_share: float = 0.1,
        inner: str = "round_robin",
        rng: _random.Random | None = None,
    ):
        super().__init__(rng)
        if isinstance(canary_share, bool) or not isinstance(canary_share, (int, float)) or not 0 <= canary_share <= 1:
            raise ValueError(f"invalid argument: canary_share: {canary_share!r}; use a fraction from 0 to 1, e.g. 0.1")
        self.stable_meta = dict(stable_meta if stable_meta is not None else {"version": "v1"})
        self.canary_meta = dict(canary_meta if canary_meta is not None else {"version": "v2"})
        self.canary_share = float(canary_share)
        self._stable, self._canary, self._fallback = make_policy(inner), make_policy(inner), make_policy(inner)

    def pick(self, candidates: list[InstanceStats]) -> InstanceStats:
        canary = [c for c in candidates if matches(c.instance, self.canary_meta)]
        stable = [c for c in candidates if matches(c.instance, self.stable_meta) and c not in canary]
        with self._lock:
            to_canary = self._rng.random() < self.canary_share
        if canary and (to_canary or not stable):
            return self._canary.pick(canary)
        if stable:
            return self._stable.pick(stable)
        return self._fallback.pick(candidates)

    def __repr__(self) -> str:
        return (
            f"CanarySplit(stable_meta={self.stable_meta}, canary_meta={self.canary_meta}, "
            f"canary_share={self.canary_share})"
        )
