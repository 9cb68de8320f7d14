"""Durations as Consul and etcd write them (Go's '500ms', '1m30s'): parse them to seconds and print them back."""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
DURATION_HINT = "(use e.g. '3s', '500ms', '1m')"


def parse_duration(text: str) -> float:
    """Seconds in a Consul (Go) duration such as '500ms', '3s', '1m', '1h' or '1m30s'; ValueError otherwise."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"{text!r} is not a duration {DURATION_HINT}")
    pos, total = 0, 0.0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ValueError(f"{text!r} is not a duration {DURATION_HINT}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total


def go_duration(nanoseconds: int) -> str:
    """Nanoseconds as Go prints a duration, the way Consul shows it: 60000000000 -> '1m0s', 1500000000 -> '1.5s'."""
    seconds = nanoseconds / 1e9
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:g}s"
    if minutes or hours:
        text = f"{int(minutes)}m{text}"
    if hours:
        text = f"{int(hours)}h{text}"
    return text
