"""Pick loopback ports for the lab's servers, and say clearly who holds a port that is taken."""

from __future__ import annotations

import os
import random
import socket

from lab_services.core.errors import LabError
from lab_services.core.network import require_lab_host

# Below the kernel's ephemeral range (net.ipv4.ip_local_port_range starts at 32768) and above common services.
ALLOCATED_RANGE = (20000, 32000)
# Added to every familiar port (8500, 8600, 2379, 9090, 5001...). 0 for learners; a test that must get
# "its" familiar ports while other labs share the machine sets it to a block nobody else uses.
PORT_OFFSET_ENV = "LAB_PORT_OFFSET"
# "LOW-HIGH": where ports without a familiar number come from. Labs that run side by side (parallel test
# workers, learners on one server) each get a slice of ALLOCATED_RANGE, so a port one lab frees by killing a
# server is never handed to another lab before that server restarts on it.
PORT_RANGE_ENV = "LAB_PORT_RANGE"


class PortInUseError(LabError, RuntimeError):
    """A port the user asked for is taken; the message names the holder and the fix."""


def is_free(host: str, port: int) -> bool:
    """True when a server could listen on host:port now.

    The check binds with SO_REUSEADDR, as Consul, etcd, Prometheus (Go's net.Listen) and gRPC do: then a
    port whose last connections linger in TIME_WAIT after `down` counts as free (the servers bind it fine),
    while a port another socket listens on, here or on 0.0.0.0, still does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def holder(port: int, host: str | None = None) -> str:
    """'pid 1234 (consul)' for the process listening on `port` (on `host` or the wildcard, when given), or
    'another process' when we may not see it."""
    import psutil  # only when a port is taken: every service process imports this module at start-up

    try:
        for conn in psutil.net_connections("inet"):
            if (
                conn.laddr
                and conn.laddr.port == port
                and conn.status in ("LISTEN", "NONE")
                and conn.pid
                and (host is None or conn.laddr.ip in (host, "0.0.0.0"))
            ):
                return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except (psutil.Error, OSError):
        pass
    return "another process"


def port_offset() -> int:
    """The offset from `LAB_PORT_OFFSET` (default 0), checked so that every familiar port stays a port."""
    text = os.environ.get(PORT_OFFSET_ENV, "0") or "0"
    try:
        offset = int(text)
    except ValueError:
        offset = -1
    if not 0 <= offset <= 65535 - 9090:
        raise ValueError(f"invalid argument: {PORT_OFFSET_ENV}: {text!r}; use a whole number from 0 to {65535 - 9090}")
    return offset


def port_range() -> tuple[int, int]:
    """The range from `LAB_PORT_RANGE` (default ALLOCATED_RANGE), checked to lie below the ephemeral ports."""
    text = os.environ.get(PORT_RANGE_ENV, "") or ""
    if not text:
        return ALLOCATED_RANGE
    low, _, high = text.partition("-")
    try:
        bounds = (int(low), int(high))
    except ValueError:
        bounds = (0, 0)
    if not 1024 <= bounds[0] < bounds[1] <= ALLOCATED_RANGE[1]:
        raise ValueError(
            f"invalid argument: {PORT_RANGE_ENV}: {text!r}; use LOW-HIGH with 1024 <= LOW < HIGH <= "
            f"{ALLOCATED_RANGE[1]} (below the kernel's ephemeral ports)"
        )
    return bounds


class PortAllocator:
    """Hands out distinct free ports; an explicit port must be free or the allocator says who holds it.

    `moved` maps each port handed out instead of a preferred one to why: `{"preferred": 8500,
    "held_by": "pid 1234 (consul)"}`, so `status` can say that Consul is not where the tutorials put it.
    """

    def __init__(self, host: str = "127.0.0.1", offset: int | None = None):
        self.host = require_lab_host(host)
        self.offset = port_offset() if offset is None else offset
        self.range = port_range()
        self.moved: dict[int, dict[str, int | str]] = {}
        self._taken: set[int] = set()
        self._random = random.Random()

    def explicit(self, port: int, option: str) -> int:
        if not 1 <= port <= 65535:
            raise ValueError(f"invalid argument: {option}: {port} is not a port (1-65535)")
        if port in self._taken or not is_free(self.host, port):
            raise PortInUseError(
                f"port {port} on {self.host} is in use by {holder(port)}; "
                f"run `discovery-lab down` or pass another {option}"
            )
        self._taken.add(port)
        return port

    def free(self, preferred: int | None = None, hosts: tuple[str, ...] = ()) -> int:
        """The preferred port (plus the offset) when it is free (so Consul sits at its familiar 8500), else a free one.

        Ports come from below Linux's ephemeral range (32768 and up): the kernel hands those to outgoing
        connections, which could take a port between our check and the server binding it. With `hosts`
        the port must be free on each of those addresses too (instances that share one port).
        """

        def usable(port: int) -> bool:
            return port not in self._taken and all(is_free(h, port) for h in (self.host, *hosts))

        if preferred:
            preferred += self.offset
            if usable(preferred):
                self._taken.add(preferred)
                return preferred
        for _ in range(1000):
            port = self._random.randint(*self.range)
            if usable(port):
                self._taken.add(port)
                if preferred and preferred not in self._taken:
                    self.moved[port] = {"preferred": preferred, "held_by": holder(preferred)}
                return port
        raise PortInUseError(
            f"no free port in {self.range[0]}-{self.range[1]} on {self.host}; run `discovery-lab down`"
        )
