"""The handle of one process a lesson starts beside the lab (a drill's probe instance, the Go service).

The runtime starts it (`Cluster.start_auxiliary`: a child process here, a container on compose) so that the lab's
`down` and its next start stop and reap it like the lab's own; what a lesson does with it is the same either way.
"""

from __future__ import annotations

import signal
from typing import Any


class BesideTheLab:
    """Signals, logs and stopping for `self.child`, the runtime's handle (None until the subclass starts it)."""

    child: Any = None

    def send(self, sig: signal.Signals) -> None:
        self.child.send(sig)

    def tail(self, lines: int = 15) -> str:
        """Its last log lines ('' before it started)."""
        return self.child.tail(lines) if self.child is not None else ""

    def kill(self) -> None:
        """SIGKILL, as a crash: it neither deregisters nor revokes anything."""
        self.child.kill()

    def stop(self) -> None:
        """Graceful: SIGTERM (it leaves its registry and drains), continuing it first if it is paused."""
        if self.child is not None:
            self.child.stop(timeout=10)
