"""The lab's exception root and its few kinds, so a notebook can catch "any lab error" and a CLI can print one line.

Each kind also derives from the built-in exception it refines (a bad input is still a ValueError), so code that
caught the built-in before keeps working. Every error the lab raises on purpose derives from `LabError`; its
message names the thing that is wrong and what to do about it.
"""

from __future__ import annotations


class LabError(Exception):
    """Any error the lab raises on purpose; the message is one line a learner can act on."""


class BadInputError(LabError, ValueError):
    """An argument, setting or file the caller gave is invalid: the message names the field and why."""


class NotRunningError(LabError, RuntimeError):
    """The lab, or the one process asked for, is not running; the message says how to start it."""


class UnsupportedError(LabError, NotImplementedError):
    """This runtime cannot do what was asked; the message says which runtime, what, and what to run instead."""

    def __init__(self, runtime: str, what: str, instead: str):
        self.runtime, self.what, self.instead = runtime, what, instead
        super().__init__(f"the {runtime} runtime has no {what}; {instead}")


class UnreachableError(LabError, ConnectionError):
    """A server (Consul, etcd, Prometheus, the Docker engine, the local engine) does not answer at its address."""
