"""Find the Consul, etcd and Prometheus binaries, or fetch them from Debian's archive without touching the system."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lab_services.core.errors import LabError
from lab_services.core.paths import cache_dir


@dataclass(frozen=True)
class Tool:
    """One server binary: which Debian package and suite carries a build the lab can use."""

    name: str
    package: str
    suite: str
    version_args: tuple[str, ...]

    @property
    def env_var(self) -> str:
        return f"LAB_{self.name.upper()}_BIN"


# Consul left Debian after bullseye; only bullseye's Prometheus still has consul_sd_configs (docs/architecture.md).
TOOLS: dict[str, Tool] = {
    "consul": Tool("consul", "consul", "bullseye", ("version",)),
    "etcd": Tool("etcd", "etcd-server", "trixie", ("--version",)),
    "etcdctl": Tool("etcdctl", "etcd-client", "trixie", ("version",)),
    "prometheus": Tool("prometheus", "prometheus", "bullseye", ("--version",)),
}

ARCHIVE = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class MissingBinaryError(LabError, RuntimeError):
    """A server binary the lab needs is nowhere to be found; the message says how to provide it."""


def bin_dir() -> Path:
    return cache_dir() / "bin"


def find_binary(name: str) -> Path:
    """Return the binary for `name`: the `LAB_<NAME>_BIN` variable first, then PATH, then the project cache."""
    tool = TOOLS[name]
    named = os.environ.get(tool.env_var)
    if named:
        path = Path(named)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise MissingBinaryError(f"{tool.env_var}={named} is not an executable file; fix the variable or unset it")
        return path
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    cached = bin_dir() / name
    if cached.is_file():
        return cached
    raise MissingBinaryError(
        f"{name} not found: run `make setup` (or `discovery-lab fetch`) to download it into {bin_dir()}, "
        f"put it on PATH, or set {tool.env_var}=/path/to/{name}"
    )


def binary_version(name: str) -> str:
    """The version the binary reports about itself, e.g. '1.8.7' for Consul."""
    path = find_binary(name)
    out = subprocess.run([str(path), *TOOLS[name].version_args], capture_output=True, text=True, timeout=20)
    match = re.search(r"v?(\d+\.\d+\.\d+)", out.stdout + out.stderr)
    return match.group(1) if match else "unknown"


def run_tool(name: str, args: list[str], timeout: float = 30.0) -> str:
    """One command of a lab binary's own CLI (e.g. `consul reload`), as an operator would type it; its output, or
    LabError with what it printed on failure."""
    done = subprocess.run([str(find_binary(name)), *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise LabError(f"`{name} {' '.join(args)}` failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def describe_binaries() -> dict[str, dict[str, str]]:
    """Path and version of each tool, or the reason it is missing, for `status --json` and `doctor`."""
    found: dict[str, dict[str, str]] = {}
    for name in TOOLS:
        try:
            found[name] = {"path": str(find_binary(name)), "version": binary_version(name)}
        except MissingBinaryError as err:
            found[name] = {"path": "", "version": "", "error": str(err)}
    return found


def fetch(
    names: list[str] | None = None, log=print, progress: Callable[[int, int, str], None] | None = None
) -> dict[str, Path]:
    """Download the Debian packages for the missing tools into the cache and unpack their binaries.

    Apt runs with a private configuration (own source list, lists and cache directories), so the system's
    sources are never changed and no root-owned state is touched; a second call downloads nothing.
    `progress(done, total, step)` hears each step (update, download, one unpack per tool).
    """

    def step(done: int, total: int, what: str) -> None:
        if progress is not None:
            progress(done, total, what)

    wanted = [TOOLS[n] for n in (names or list(TOOLS))]
    missing = [t for t in wanted if not (bin_dir() / t.name).is_file()]
    if not missing:
        return {t.name: bin_dir() / t.name for t in wanted}
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise MissingBinaryError(
            "apt-get and dpkg-deb are needed to fetch the server binaries (Debian/Ubuntu); elsewhere install "
            "consul, etcd and prometheus yourself and set LAB_CONSUL_BIN, LAB_ETCD_BIN, LAB_ETCDCTL_BIN, "
            "LAB_PROMETHEUS_BIN"
        )
    apt_dir = cache_dir() / "apt"
    options = private_apt(apt_dir, sorted({t.suite for t in missing}))
    log(f"fetching {', '.join(t.package + '/' + t.suite for t in missing)} from Debian's archive")
    total = 2 + len(missing)
    debs = apt_dir / "debs"
    try:
        step(0, total, "apt-get update (the archive's package lists)")
        run_step(["apt-get", *options, "update"], "apt-get update")
        step(1, total, f"apt-get download {len(missing)} packages")
        run_step(
            ["apt-get", *options, "download", *[f"{t.package}/{t.suite}" for t in missing]],
            "apt-get download",
            cwd=debs,
        )
    except MissingBinaryError as err:
        raise unavailable(missing, err) from None
    bin_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n, tool in enumerate(missing):
            step(2 + n, total, f"unpacking {tool.name}")
            deb = next(iter(sorted(debs.glob(f"{tool.package}_*.deb"))), None)
            if deb is None:
                raise MissingBinaryError(f"apt-get download left no {tool.package}_*.deb in {debs}")
            run_step(["dpkg-deb", "-x", str(deb), tmp], f"unpacking {deb.name}")
            source = Path(tmp) / "usr" / "bin" / tool.name
            if not source.is_file():
                raise MissingBinaryError(f"{deb.name} has no usr/bin/{tool.name}")
            shutil.copy2(source, bin_dir() / tool.name)
            log(f"installed {bin_dir() / tool.name}")
    step(total, total, "fetched")
    return {t.name: bin_dir() / t.name for t in wanted}


def private_apt(apt_dir: Path, suites: list[str]) -> list[str]:
    """apt-get options for a configuration of our own in `apt_dir` (source list, package lists, cache), reading
    `suites` of Debian's archive: the system's sources and state are never changed, and no root is needed."""
    for sub in ("lists/partial", "archives/partial", "debs"):
        (apt_dir / sub).mkdir(parents=True, exist_ok=True)
    sources = apt_dir / "sources.list"
    sources.write_text("".join(f"deb [signed-by={KEYRING}] {ARCHIVE} {s} main\n" for s in suites))
    return [
        "-o",
        f"Dir::Etc::SourceList={sources}",
        "-o",
        "Dir::Etc::SourceParts=/dev/null",
        "-o",
        f"Dir::State::Lists={apt_dir / 'lists'}",
        "-o",
        f"Dir::Cache={apt_dir}",
        "-o",
        "Debug::NoLocking=1",
        "-o",
        "APT::Sandbox::User=root",
    ]


def unavailable(tools: list[Tool], cause: Exception) -> MissingBinaryError:
    """Bullseye is past its LTS and may leave the mirror: name each binary, its variable, and the way round."""
    names = "; ".join(f"{t.name} ({t.package}/{t.suite}; or install it and set {t.env_var})" for t in tools)
    return MissingBinaryError(
        f"could not fetch {names} from {ARCHIVE}: {str(cause).rstrip('.')}. Without these binaries use the compose "
        "runtime, which runs the official images: LAB_BACKEND=compose (compose/README.md)"
    )


def run_step(argv: list[str], what: str, cwd: Path | None = None) -> str:
    """Run one step of a fetch; its output, or MissingBinaryError with what it printed."""
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd)
    if result.returncode != 0:
        raise MissingBinaryError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout
