"""One learner's own corner of a shared machine: a state directory and a block of ports, derived from the learner.

On a hub whose learners run as processes of one machine (JupyterHub's LocalProcessSpawner, or SystemdSpawner as The
Littlest JupyterHub runs it), every learner's lab would otherwise share `.lab/` and Consul's 8500. Two labs already
live side by side when each has its own `LAB_STATE_DIR`, `LAB_PORT_OFFSET` and `LAB_PORT_RANGE`; this module gives
each learner those three, from the learner's slot (the hub's user id, which it never hands to two users), so nobody
types them and no two learners see, reap or collide with each other's processes.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from lab_services.core.errors import BadInputError
from lab_services.core.ports import ALLOCATED_RANGE, PORT_OFFSET_ENV, PORT_RANGE_ENV

STATE_DIR_ENV = "LAB_STATE_DIR"
# Set by the lab's hub configuration to the hub's id of the user; JupyterHub itself sets JUPYTERHUB_USER.
SLOT_ENV = "LAB_LEARNER_SLOT"
USER_ENV = "JUPYTERHUB_USER"
# The ports a lab prefers (Consul's HTTP and DNS, etcd's client port, Prometheus, the shared instance port and the
# instances' own 5001...): each learner's offset moves all of them, and no two learners' moved sets may meet.
FAMILIAR_PORTS = (2379, 5000, *range(5001, 5041), 8500, 8600, 9090)
# A learner's free ports: a slice of the range below the kernel's ephemeral ports (`core.ports`).
PORTS_PER_LEARNER = 200
# Offsets step by 10 and stop where the highest familiar port would reach the free-port range.
OFFSET_STEP = 10


@functools.cache
def offsets() -> tuple[int, ...]:
    """Every usable offset, in order: one per slot. An offset is usable when its moved familiar ports meet no
    earlier offset's and stay below ALLOCATED_RANGE (where every learner's free ports come from)."""
    chosen: list[int] = []
    taken: set[int] = set()
    for offset in range(0, ALLOCATED_RANGE[0] - max(FAMILIAR_PORTS), OFFSET_STEP):
        moved = {port + offset for port in FAMILIAR_PORTS}
        if not moved & taken:
            chosen.append(offset)
            taken |= moved
    return tuple(chosen)


def capacity() -> int:
    """How many learners one machine can give a corner of their own (the scarcer of offsets and port slices)."""
    return min(len(offsets()), (ALLOCATED_RANGE[1] - ALLOCATED_RANGE[0]) // PORTS_PER_LEARNER)


def learner_environment(user: str, slot: int, root: Path) -> dict[str, str]:
    """The environment that gives learner `user` (with the hub's unique `slot`, 0 or more) a lab of their own:
    a state directory under `root` named for them, their offset for the familiar ports and their slice of free
    ports. BadInputError when the name could escape `root` or the machine has no corner left for this slot."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", user) or ".." in user:
        raise BadInputError(
            f"invalid argument: user: {user!r}; a learner's name becomes a directory: use letters, digits, '.', "
            "'_', '@' or '-' (up to 64)"
        )
    if not 0 <= slot < capacity():
        raise BadInputError(
            f"invalid argument: slot: {slot} for {user!r}; one machine gives at most {capacity()} learners a lab "
            f"of their own (slots 0 to {capacity() - 1}): run the learners in containers (DockerSpawner) instead"
        )
    low = ALLOCATED_RANGE[0] + slot * PORTS_PER_LEARNER
    return {
        SLOT_ENV: str(slot),
        STATE_DIR_ENV: str(root / user),
        PORT_OFFSET_ENV: str(offsets()[slot]),
        PORT_RANGE_ENV: f"{low}-{low + PORTS_PER_LEARNER - 1}",
    }
