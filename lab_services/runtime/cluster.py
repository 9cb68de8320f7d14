"""The port every caller uses to run a lab, so a lesson, the CLI or a benchmark never cares which runtime runs it.

Two adapters implement it: `runtime/local/` (child processes on loopback, owned by a long-lived engine process)
and `runtime/compose/` (containers of one compose project). `runtime.open_cluster()` picks one from LAB_BACKEND;
nothing outside `runtime` imports an adapter or asks which one it has.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from lab_services.core.errors import BadInputError, LabError, NotRunningError
from lab_services.core.network import kernel_host
from lab_services.runtime import go_programs, processes
from lab_services.runtime.binaries import find_binary
from lab_services.runtime.cleanup import clean_lab_state
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.nodes.service import own_address
from lab_services.runtime.status import ClusterStatus


class NotReadyError(LabError, RuntimeError):
    """A lab process did not become ready (or exited); the message carries the tail of its log."""


class UnknownProcessError(BadInputError, KeyError):
    """A process name that is not part of the running lab; the message lists the valid names."""

    def __str__(self) -> str:
        return str(self.args[0])


class Action(StrEnum):
    """What can be done to one process of the lab, as a crash, an operator or a hang would do it."""

    KILL = "kill"  # SIGKILL: a crash; nothing deregisters
    STOP = "stop"  # SIGTERM and wait: the graceful path (services deregister first)
    START = "start"  # start a stopped or killed process again with the same ports and data, and wait until ready
    PAUSE = "pause"  # frozen: alive but hung, which only timeouts notice
    RESUME = "resume"  # thawed

    @classmethod
    def parse(cls, value: str | Action) -> Action:
        try:
            return cls(value)
        except ValueError:
            raise BadInputError(
                f"invalid argument: action: {value!r}; use one of {', '.join(a.value for a in cls)}"
            ) from None


class Auxiliary(StrEnum):
    """Processes a lesson or drill starts beside the lab (a probe instance, an extra Consul agent), through the
    runtime, so they are stopped and reaped like the lab's own."""

    SERVICE = "service"  # one more user-service process with flags of the caller's choosing (service.command)
    CONSUL_AGENT = "consul-agent"  # `consul agent` with the caller's flags, e.g. -config-file
    GO_SERVICE = "go-service"  # the articles' Go user service (go/cmd/user-service), built on first use


@dataclass(frozen=True)
class NotebookServer:
    """A JupyterLab that is part of the lab: where it answers once up (no token needed), the URL a learner opens
    (with its token), and its main pid."""

    api_url: str
    open_url: str
    pid: int | None


class Cluster(ABC):
    """Start, inspect and disturb a lab cluster. Every method answers with plain data (JSON-ready) or a status."""

    backend: str  # the runtime's name, shown in `status` (never a reason for a caller to branch)
    # The command-line tools this runtime needs where the notebook runs: here every server's binary; on compose the
    # servers are containers, and the kernel needs only the clients a lesson runs (consul, etcdctl).
    tools: tuple[str, ...] = ("consul", "etcd", "etcdctl", "prometheus")
    base: Path  # the state directory: logs, data, pid files

    # -- finding and starting --------------------------------------------------------------------------
    @abstractmethod
    def running(self) -> bool:
        """True while this runtime has a lab (started by anyone: the CLI, a kernel, a test)."""

    @abstractmethod
    def published(self) -> dict[str, Any] | None:
        """The running lab's state as its runtime publishes it (`{"status": ...}` and more), or None."""

    @abstractmethod
    def launch(self, config: ClusterConfig, owner_pid: int | None = None) -> ClusterStatus:
        """Start a lab of `config`'s shape and wait until it is really ready. With `owner_pid`, a runtime that can
        tie the lab's life to a process (a notebook kernel) stops the lab when that process dies."""

    @abstractmethod
    def ensure(self, wanted: ClusterConfig, owner_pid: int | None = None) -> None:
        """Reuse the running lab if it serves `wanted`; otherwise start (or grow) one that does."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where this runtime keeps its lab, in words (a state directory, a compose project)."""

    @property
    @abstractmethod
    def start_command(self) -> str:
        """The shell command that starts this runtime's lab."""

    def up(self) -> ClusterStatus:
        """The running lab's status, or a lab of the default shape started now."""
        return self.status() if self.running() else self.launch(ClusterConfig())

    def notebook_server(self) -> NotebookServer | None:
        """The JupyterLab this runtime serves itself, when it does. None here: `make lab` starts JupyterLab beside a
        local lab, not as part of it."""
        return None

    def support_pids(self) -> dict[str, int | None]:
        """The processes that run the lab beside its servers and instances, by name, so a memory figure counts the
        whole of it: here the engine process (the lab's processes are its children)."""
        return {}

    @abstractmethod
    def down(self, volumes: bool = False) -> None:
        """Stop and remove every process; with `volumes`, the servers' data too. Safe to call twice."""

    # -- inspecting ------------------------------------------------------------------------------------
    @abstractmethod
    def status(self) -> ClusterStatus:
        """Addresses, processes with pids and states, leaders, binaries; `.to_dict()` is the `status --json` object."""

    def state_of(self, name: str) -> str:
        """running, paused or stopped: one process's state."""
        processes_ = self.status().processes
        for p in processes_:
            if p.name == name:
                return p.state
        raise UnknownProcessError(
            f"no lab process named {name!r}; the lab has: {', '.join(p.name for p in processes_)}"
        )

    @abstractmethod
    def log_text(self, name: str) -> str:
        """Everything the process `name` has logged, as its runtime keeps it (a file, the container's log); it only
        grows, so a reader that remembers its length reads what came after."""

    def not_running(self) -> NotRunningError:
        return NotRunningError(f"no lab is running in {self.location}; start one with `{self.start_command}`")

    # -- one process at a time -------------------------------------------------------------------------
    @abstractmethod
    def act(self, name: str, action: Action) -> dict[str, Any]:
        """Do `action` to the process `name` and return once it has taken effect (what happened, with its pid)."""

    @abstractmethod
    def start_together(self, names: list[str]) -> list[str]:
        """Start stopped processes at once and wait for them in parallel: one Consul or etcd server alone cannot
        elect a leader while its peers are down too, so one by one could never succeed. Returns the names."""

    def kill(self, name: str) -> dict[str, Any]:
        return self.act(name, Action.KILL)

    def stop(self, name: str) -> dict[str, Any]:
        return self.act(name, Action.STOP)

    def start(self, name: str) -> dict[str, Any]:
        return self.act(name, Action.START)

    def pause(self, name: str) -> dict[str, Any]:
        return self.act(name, Action.PAUSE)

    def resume(self, name: str) -> dict[str, Any]:
        return self.act(name, Action.RESUME)

    # -- instances -------------------------------------------------------------------------------------
    @abstractmethod
    def add_service(self, version: str = "v1", meta: dict[str, str] | None = None) -> dict[str, Any]:
        """Start one more instance of the user service (e.g. a v2 canary) and wait until it passes."""

    @abstractmethod
    def remove_service(self, name: str) -> dict[str, Any]:
        """Stop an instance `add_service` started (gracefully: it deregisters) and forget it."""

    @abstractmethod
    def added_services(self) -> list[str]:
        """The instances `add_service` started, beyond the shape the lab was launched with."""

    def reset(self) -> list[str]:
        """Back to the shape `launch` made, then clear what lessons left; returns the steps taken.

        Resume the paused, remove added instances, start the stopped together; then registrations, KV and etcd
        keys, faults and users are `cleanup.clean_lab_state`'s job.
        """
        steps = []
        for p in self.status().processes:
            if p.state == "paused":
                self.resume(p.name)
                steps.append(f"resumed {p.name}")
        for name in self.added_services():
            self.remove_service(name)
            steps.append(f"removed {name}")
        stopped = [p.name for p in self.status().processes if p.state == "stopped"]
        steps += [f"started {name}" for name in self.start_together(stopped)]
        return steps + clean_lab_state(self.status())

    # -- processes beside the lab ----------------------------------------------------------------------
    def auxiliary_host(self, index: int | None = None) -> str:
        """The address the next process beside the lab binds: the kernel's own address here, a free address on the
        stack's network on compose. With `index`, an address of its own, as instance `index` gets with
        instance_addresses="distinct" (127.0.0.(10+index) here): Consul DNS's A records carry no port, so instances
        that share one port must differ by address."""
        return own_address(index) if index is not None else kernel_host()

    def start_auxiliary(self, kind: Auxiliary, name: str, args: list[str], host: str | None = None) -> Any:
        """Start a process beside the lab (a drill's probe instance, an extra Consul agent) with `args` after the
        program `kind` names, at `host` (from `auxiliary_host()`); the handle has `stop()`, `kill()`, `send(sig)`,
        `alive()` and `tail(lines)`. It is stopped with this interpreter and by the lab's `down`, and reaped at the
        lab's next start if a crash leaves it; the caller stops it (`.stop()`) when done.

        Here it is a child process of this interpreter; the compose runtime runs a container instead.
        """
        kind = Auxiliary(kind)
        if not name or "/" in name:
            raise BadInputError(f"invalid argument: name: {name!r}; give a plain process name")
        programs = {
            Auxiliary.SERVICE: lambda: [sys.executable, "-m", "lab_services.service"],
            Auxiliary.CONSUL_AGENT: lambda: [str(find_binary("consul")), "agent"],
            Auxiliary.GO_SERVICE: lambda: [str(go_programs.program("user-service"))],
        }
        program = programs[kind]()
        log = self.base / "auxiliary" / f"{name}.log"
        return processes.spawn(name, [*program, *args], log_path=log, base=self.base)
