"""The user service's command line, built in one place from named fields, next to the parser that reads it (main.py).

The local runtime, the compose runtime and the drills' probe all start instances; each says what differs (address,
registry, checks) and this writes the flags, so a flag renamed in `main.py` is renamed for every caller at once.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServiceCommand:
    """`python -m lab_services.service ...` for one instance; `args()` is what follows the interpreter."""

    host: str
    port: int
    http_port: int
    name: str
    instance_id: str
    registry: str = "none"  # consul, etcd, both or none
    version: str = "v1"
    tags: Sequence[str] = ()  # default: the version, so `?tag=v2` finds a canary
    meta: Mapping[str, str] = field(default_factory=dict)  # beside version=<version>
    consul: str | None = None  # the Consul agent's HTTP address it registers with
    etcd: Sequence[str] = ()  # etcd endpoints
    checks: Sequence[str] = ("grpc",)  # Consul check kinds
    options: Sequence[str] = ()  # any other flags of main.py as they are: TLS, config store, check timings

    def args(self) -> list[str]:
        return ["-m", "lab_services.service", *self.flags()]

    def flags(self) -> list[str]:
        """The service's own flags, without the program."""
        args = ["--host", self.host, "--port", str(self.port)]
        args += ["--http-port", str(self.http_port), "--name", self.name, "--id", self.instance_id]
        args += ["--tags", ",".join(self.tags or [self.version]), "--meta", f"version={self.version}"]
        args += ["--registry", self.registry]
        for key, value in self.meta.items():
            args += ["--meta", f"{key}={value}"]
        args += list(self.options)
        if self.consul:
            args += ["--consul", self.consul]
        if self.etcd:
            args += ["--etcd", ",".join(self.etcd)]
        for check in self.checks:
            args += ["--check", check]
        return args

    def argv(self, python: str = sys.executable) -> list[str]:
        """The whole command for a process on this machine."""
        return [python, *self.args()]
