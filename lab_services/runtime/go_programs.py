"""Build the articles' Go programs (go/ at the repo root: a user service and an etcd-resolving client) offline.

The toolchain and every library come from Debian's packages (bookworm: Go 1.19, grpc 1.33, etcd 3.4's clientv3,
protobuf 1.28), fetched with the same private apt configuration as the servers (`binaries.private_apt`) and unpacked
under `go_dir()`, so the system is never changed; a system with those packages installed by apt works too. Go builds
in GOPATH mode (GO111MODULE=off) against Debian's /usr/share/gocode tree, with no module proxy.

Two adjustments make Debian's tree serve code written for today's module versions (go/go.mod): Debian's etcd 3.4
keeps clientv3 at go.etcd.io/etcd/clientv3, so the build's own GOPATH links go.etcd.io/etcd/client/v3 (3.5's path,
same package and API for what the programs use) to it; and bookworm's etcd package pulls in github.com/golang/protobuf
1.3, which predates the generated code's protobuf runtime, so its 1.5 package (same archive) is unpacked instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lab_services.core.paths import REPO_DIR, cache_dir
from lab_services.runtime.binaries import MissingBinaryError, private_apt, run_step

GO_SOURCE = REPO_DIR / "go"
MODULE = "discoverylab"  # go/go.mod's module path; the GOPATH build links src/discoverylab to go/
PROGRAMS = ("user-service", "user-client")
SUITE = "bookworm"
# What apt resolves the rest from; the substitutions below are the two the module docstring explains.
PACKAGES = (
    "golang-go",
    "golang-google-grpc-dev",
    "golang-google-protobuf-dev",
    "golang-etcd-server-dev",
    "protobuf-compiler",
    "libprotobuf-dev",
)
_SWAP = {"golang-github-golang-protobuf-1-3-dev": "golang-github-golang-protobuf-1-5-dev", "golang-goprotobuf-dev": ""}
# Of everything apt resolves, only the Go sources, the toolchain and protoc (with its libraries and the well-known
# .proto files) are unpacked: the rest (libc, systemd) is the system's own.
_KEEP = re.compile(r"^(golang-.*|protobuf-compiler|libprotoc\d+|libprotobuf\d+|libprotobuf-dev)$")
GO_VERSION_DIR = "usr/lib/go-1.19"
SYSTEM_ROOT = Path("/")  # where apt installs the same packages
INSTALL_HINT = (
    "run `make go-programs` (fetches Debian's Go 1.19, grpc, protobuf and etcd client packages into "
    "{dir} without changing the system), or install them: apt-get install golang-go golang-google-grpc-dev "
    "golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev golang-etcd-server-dev protobuf-compiler "
    "libprotobuf-dev"
)


class MissingGoToolchainError(MissingBinaryError):
    """No Go toolchain with the libraries the programs import; the message says what to install."""


class GoBuildError(MissingBinaryError):
    """`go build` failed; the message carries the compiler's output."""


@dataclass(frozen=True)
class Toolchain:
    """Where Go, its library tree (a GOPATH of Debian's) and protoc are."""

    goroot: Path
    gocode: Path
    usr: Path  # the /usr holding protoc, its libraries and include/google/protobuf

    @property
    def go(self) -> Path:
        return self.goroot / "bin" / "go"


def go_dir() -> Path:
    """The Go toolchain's root, the build's GOPATH and cache, and the programs; `LAB_GO_DIR` moves it."""
    return Path(os.environ.get("LAB_GO_DIR") or cache_dir() / "go")


def toolchain() -> Toolchain:
    """The fetched toolchain under go_dir(), else the system's Debian packages; MissingGoToolchainError if neither."""
    for root in (go_dir() / "root", SYSTEM_ROOT):
        usr = root / "usr"
        found = Toolchain(root / GO_VERSION_DIR, usr / "share" / "gocode", usr)
        if found.go.is_file() and (found.gocode / "src" / "go.etcd.io" / "etcd" / "clientv3").is_dir():
            return found
    raise MissingGoToolchainError(
        "the Go programs need Go 1.19 and Debian's grpc, protobuf and etcd client sources, and neither "
        f"{go_dir() / 'root'} nor the system has them: " + INSTALL_HINT.format(dir=go_dir() / "root")
    )


def fetch_toolchain(log=print) -> Toolchain:
    """Download and unpack the Debian packages into go_dir()/root, once (~150 MB of .deb files, ~900 MB unpacked)."""
    root = go_dir() / "root"
    stamp = root / ".fetched"
    if stamp.is_file():
        return toolchain()
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise MissingGoToolchainError(
            "apt-get and dpkg-deb are needed to fetch the Go packages (Debian/Ubuntu); elsewhere install Go 1.19+ "
            "and see go/README.md for a module build"
        )
    apt_dir = go_dir() / "apt"
    options = private_apt(apt_dir, [SUITE])
    # An empty package status: resolve as if nothing were installed, so the set does not depend on this machine.
    status = apt_dir / "status"
    status.touch()
    options += ["-o", f"Dir::State::status={status}"]
    log(f"fetching Go 1.19 and its libraries from Debian {SUITE} into {root}")
    run_step(["apt-get", *options, "update"], "apt-get update")
    plan = run_step(
        ["apt-get", *options, "--simulate", "--no-install-recommends", "install", *PACKAGES], "apt-get --simulate"
    )
    resolved = [line.split()[1] for line in plan.splitlines() if line.startswith("Inst ")]
    wanted = sorted({_SWAP.get(name, name) for name in resolved if _KEEP.match(name)} - {""})
    debs = apt_dir / "debs"
    run_step(["apt-get", *options, "download", *wanted], "apt-get download", cwd=debs)
    # Unpacked beside the root and moved into place whole, so an interrupted fetch never looks finished.
    unpacked = Path(tempfile.mkdtemp(dir=go_dir(), prefix="unpacking-"))
    for name in wanted:
        deb = next(iter(sorted(debs.glob(f"{name}_*.deb"))), None)
        if deb is None:
            shutil.rmtree(unpacked, ignore_errors=True)
            raise MissingGoToolchainError(f"apt-get download left no {name}_*.deb in {debs}")
        run_step(["dpkg-deb", "-x", str(deb), str(unpacked)], f"unpacking {deb.name}")
    shutil.rmtree(root, ignore_errors=True)
    unpacked.rename(root)
    root.chmod(0o755)
    stamp.write_text("\n".join(wanted) + "\n")
    shutil.rmtree(debs, ignore_errors=True)
    log(f"unpacked {len(wanted)} packages into {root}")
    return toolchain()


def go_env(tools: Toolchain) -> dict[str, str]:
    """The environment of every go command: GOPATH mode over our link farm and Debian's tree, no network, no cgo."""
    gopath = go_dir() / "gopath"
    links = {
        gopath / "src" / MODULE: GO_SOURCE,
        gopath / "src" / "go.etcd.io" / "etcd" / "client" / "v3": tools.gocode / "src" / "go.etcd.io/etcd/clientv3",
    }
    for link, target in links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink() or link.readlink() != target:
            link.unlink(missing_ok=True)
            link.symlink_to(target)
    return {
        "PATH": f"{tools.goroot / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", str(go_dir())),
        "GOROOT": str(tools.goroot),
        "GOPATH": f"{gopath}:{tools.gocode}",
        "GO111MODULE": "off",
        "GOFLAGS": "",
        "GOPROXY": "off",
        "GOCACHE": str(go_dir() / "cache"),
        "CGO_ENABLED": "0",
    }


def program_path(name: str) -> Path:
    if name not in PROGRAMS:
        raise ValueError(f"invalid argument: name: {name!r}; the Go programs are {', '.join(PROGRAMS)}")
    return go_dir() / "bin" / name


def build(names: tuple[str, ...] = PROGRAMS, log=print) -> dict[str, Path]:
    """Build each program whose binary is older than any file under go/; returns their paths."""
    sources = [p.stat().st_mtime for p in GO_SOURCE.rglob("*") if p.is_file()]
    if not sources:  # an image with the package but not the checkout: the JupyterLab image built them in a stage
        missing = [n for n in names if not program_path(n).is_file()]
        if missing:
            raise MissingGoToolchainError(
                f"the Go programs ({', '.join(missing)}) are not in {go_dir() / 'bin'} and their sources "
                f"({GO_SOURCE}) are not here: rebuild the JupyterLab image, which builds them "
                "(`docker compose -f compose/docker-compose.yml build jupyter`), mount a checkout where "
                "`make go-programs` ran at /src, or run lesson 15 on the local runtime (`make lab`)"
            )
        return {n: program_path(n) for n in names}
    newest = max(sources)
    stale = [n for n in names if not program_path(n).is_file() or program_path(n).stat().st_mtime < newest]
    if stale:
        (go_dir() / "bin").mkdir(parents=True, exist_ok=True)
        for name in stale:
            began = time.monotonic()
            run_go(["build", "-o", str(program_path(name)), f"{MODULE}/cmd/{name}"], f"go build of {name}")
            log(f"built {program_path(name)} in {time.monotonic() - began:.1f} s")
    return {n: program_path(n) for n in names}


def program(name: str) -> Path:
    """The built program `name` ('user-service' or 'user-client'), building it first if it is missing or stale."""
    return build((name,), log=lambda _: None)[name]


def run_go(args: list[str], what: str, timeout: float = 600.0) -> str:
    """One `go` command (build, vet, test) as the build runs it; its output, or GoBuildError with the compiler's."""
    tools = toolchain()
    go_dir().mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [str(tools.go), *args], env=go_env(tools), cwd=go_dir(), capture_output=True, text=True, timeout=timeout
    )
    if done.returncode:
        raise GoBuildError(f"{what} failed (exit {done.returncode}):\n{(done.stderr or done.stdout).strip()}")
    return done.stdout


@dataclass(frozen=True)
class ClientRun:
    """What one run of the Go client printed: the address lists its resolver handed gRPC, each call, the summary."""

    resolved: list[list[str]]
    calls: list[dict]
    served_by: dict[str, int]
    failed: int
    exit_code: int
    stderr: str


def run_client(endpoints: list[str], prefix: str, calls: int = 9, expect: int = 1, timeout: float = 60.0) -> ClientRun:
    """Run go/cmd/user-client once against etcd `endpoints`, resolving the instances under `prefix`."""
    argv = [str(program("user-client")), "-etcd", ",".join(endpoints), "-prefix", prefix]
    argv += ["-calls", str(calls), "-expect", str(expect)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    summary = next((e for e in lines if e["event"] == "summary"), {"served_by": {}, "failed": calls})
    return ClientRun(
        resolved=[e["addresses"] or [] for e in lines if e["event"] == "resolved"],
        calls=[e for e in lines if e["event"] == "call"],
        served_by=dict(summary["served_by"] or {}),
        failed=int(summary["failed"]),
        exit_code=done.returncode,
        stderr=done.stderr.strip(),
    )


def generate(out_dir: Path) -> list[Path]:
    """Generate go/userpb from protos/ into `out_dir` with Debian's protoc and the plugins built from Debian's
    sources (protoc-gen-go 1.28, protoc-gen-go-grpc from grpc 1.33): how the committed code was made."""
    tools = toolchain()
    env = go_env(tools)
    plugins = go_dir() / "plugins"
    for plugin, package in (
        ("protoc-gen-go", "google.golang.org/protobuf/cmd/protoc-gen-go"),
        ("protoc-gen-go-grpc", "google.golang.org/grpc/cmd/protoc-gen-go-grpc"),
    ):
        if not (plugins / plugin).is_file():
            run_go(["build", "-o", str(plugins / plugin), package], f"building {plugin}")
    protos = sorted(p.relative_to(REPO_DIR / "protos") for p in (REPO_DIR / "protos").rglob("*.proto"))
    mapping = ",".join(f"M{p}={MODULE}/userpb" for p in protos)
    argv = [
        str(tools.usr / "bin" / "protoc"),
        f"-I{REPO_DIR / 'protos'}",
        f"-I{tools.usr / 'include'}",
        f"--go_out={out_dir}",
        f"--go_opt=module={MODULE},{mapping}",
        f"--go-grpc_out={out_dir}",
        f"--go-grpc_opt=module={MODULE},{mapping}",
        *map(str, protos),
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    protoc_env = {**env, "PATH": f"{plugins}:{env['PATH']}", "LD_LIBRARY_PATH": str(tools.usr / "lib/x86_64-linux-gnu")}
    done = subprocess.run(argv, env=protoc_env, capture_output=True, text=True)
    if done.returncode:
        raise GoBuildError(f"protoc failed (exit {done.returncode}): {done.stderr.strip()}")
    return sorted(out_dir.rglob("*.go"))


def main() -> None:
    """`make go-programs`: fetch the toolchain if need be, build both programs, say how long each step took."""
    began = time.monotonic()
    try:
        toolchain()
    except MissingGoToolchainError:
        fetch_toolchain()
        print(f"Go toolchain fetched in {time.monotonic() - began:.1f} s")
    built = time.monotonic()
    for name, path in build().items():
        print(f"{name}: {path}")
    print(f"Go programs ready in {time.monotonic() - built:.1f} s (total {time.monotonic() - began:.1f} s)")


if __name__ == "__main__":
    main()
