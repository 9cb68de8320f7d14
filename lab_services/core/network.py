"""Which addresses the lab may bind and dial, and which address the servers a notebook starts announce.

The lab's traffic stays on the machine: loopback (127.0.0.0/8) for the local runtime, and the compose stack's
own bridge network, `LAB_NET_PREFIX`.0/24 (set in compose/.env; a learner whose network already uses it picks
another prefix there). A kernel runs where the lab is reachable: on 127.0.0.1 beside a local lab, or in the
stack's JupyterLab container, whose bridge address the stack passes in as `LAB_KERNEL_HOST`. A server a lesson
starts in the kernel binds and registers `kernel_host()`, so Consul's checks, Prometheus and the other
containers reach it in either case.
"""

from __future__ import annotations

import ipaddress
import os
import re
from functools import cache

from lab_services.core.errors import BadInputError
from lab_services.core.paths import REPO_DIR

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
NET_PREFIX_ENV = "LAB_NET_PREFIX"
KERNEL_HOST_ENV = "LAB_KERNEL_HOST"
# The stack's own file says which prefix it uses; a process outside the stack (the CLI, a test on the host) reads it
# there, so both agree without being told. This default only applies when the file is missing too.
ENV_FILE = REPO_DIR / "compose" / ".env"
DEFAULT_NET_PREFIX = "10.213.7"


@cache
def _env_file() -> str:
    try:
        return ENV_FILE.read_text()
    except OSError:
        return ""


def stack_setting(name: str, default: str = "") -> str:
    """One of the stack's settings: the environment's value, else compose/.env's (as `docker compose` reads them)."""
    found = re.search(rf"^\s*{re.escape(name)}\s*=[ \t]*(\S*)[ \t]*$", _env_file(), re.MULTILINE)
    return os.environ.get(name) or (found.group(1) if found else "") or default


def net_prefix() -> str:
    """The first three octets of the stack's /24 ('10.213.7'): `LAB_NET_PREFIX`, else compose/.env's."""
    prefix = stack_setting(NET_PREFIX_ENV, DEFAULT_NET_PREFIX).strip()
    parts = prefix.split(".")
    if len(parts) != 3 or not all(p.isdigit() and 0 <= int(p) <= 255 for p in parts):
        raise BadInputError(
            f"invalid argument: {NET_PREFIX_ENV}: {prefix!r}; give the first three octets of a private /24, "
            f"e.g. {DEFAULT_NET_PREFIX} (the stack's network is then {DEFAULT_NET_PREFIX}.0/24)"
        )
    if not ipaddress.ip_network(f"{prefix}.0/24").is_private:
        raise BadInputError(f"invalid argument: {NET_PREFIX_ENV}: {prefix}.0/24 is not a private network")
    return prefix


def lab_subnet() -> ipaddress.IPv4Network:
    """The compose stack's bridge network."""
    return ipaddress.IPv4Network(f"{net_prefix()}.0/24")


def require_lab_host(host: str, field: str = "host") -> str:
    """`host` if the lab may use it (loopback, or the stack's network); BadInputError naming `field` otherwise."""
    try:
        address = ipaddress.ip_address(host)
        ok = address in LOOPBACK or address in lab_subnet()
    except ValueError:
        ok = False
    if not ok:
        raise BadInputError(
            f"invalid argument: {field}: {host!r} is not a lab address; the lab uses only loopback (127.0.0.0/8) "
            f"and its own container network ({lab_subnet()})"
        )
    return host


def is_lab_address(host: str) -> bool:
    """True for loopback and the stack's own network: the addresses nothing outside this machine reaches."""
    try:
        require_lab_host(host.split("//")[-1].rsplit(":", 1)[0] if ":" in host else host)
    except BadInputError:
        return False
    return True


def kernel_host() -> str:
    """The address a server started in this process binds and registers: 127.0.0.1, or in the compose stack's
    JupyterLab container its bridge address (`LAB_KERNEL_HOST`), which Consul's checks can reach."""
    return require_lab_host(os.environ.get(KERNEL_HOST_ENV) or "127.0.0.1", KERNEL_HOST_ENV)
