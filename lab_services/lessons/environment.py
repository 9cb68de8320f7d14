"""The environment check of lesson 00: Python, the packages the lab imports, and the server binaries, with versions."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from importlib import metadata

from lab_services.core.table import html_table, text_table
from lab_services.runtime import open_cluster
from lab_services.runtime.binaries import describe_binaries

MIN_PYTHON = (3, 11)

# (distribution on PyPI, module it installs): the names differ for several of them, which is what trips people up.
PACKAGES = (
    ("grpcio", "grpc"),
    ("grpcio-health-checking", "grpc_health.v1.health"),
    ("grpcio-reflection", "grpc_reflection.v1alpha.reflection"),
    ("protobuf", "google.protobuf"),
    ("py-consul", "consul"),
    ("etcd-sdk-python", "pyetcd"),
    ("prometheus_client", "prometheus_client"),
    ("dnspython", "dns.resolver"),
    ("cryptography", "cryptography"),
    ("psutil", "psutil"),
    ("ipywidgets", "ipywidgets"),
    ("matplotlib", "matplotlib"),
)
COLUMNS = ["kind", "name", "version", "ok", "note"]


@dataclass
class EnvironmentReport:
    """One row per thing checked; `ok` is True only when every row is."""

    rows: list[dict]

    @property
    def ok(self) -> bool:
        return all(r["ok"] for r in self.rows)

    @property
    def problems(self) -> list[dict]:
        return [r for r in self.rows if not r["ok"]]

    def _repr_html_(self) -> str:
        verdict = "everything the lab needs is here" if self.ok else f"{len(self.problems)} problem(s): see the notes"
        return f"<p><b>{verdict}</b></p>" + html_table(self.rows, COLUMNS)

    def __repr__(self) -> str:
        return text_table(self.rows, COLUMNS)


def check_environment() -> EnvironmentReport:
    """Check the Python version, import every package the lab uses, and run each binary the runtime needs here for
    its version (the local runtime runs every server from here; compose needs only the consul and etcdctl clients)."""
    rows = [_python_row()]
    rows += [_package_row(dist, module) for dist, module in PACKAGES]
    found = describe_binaries()
    needed = open_cluster().tools
    rows += [_binary_row(name, found.get(name, {"error": f"{name} is not a tool the lab knows"})) for name in needed]
    return EnvironmentReport(rows)


def _python_row() -> dict:
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info[:2] >= MIN_PYTHON
    note = (
        sys.executable
        if ok
        else f"the lab needs Python {'.'.join(map(str, MIN_PYTHON))} or newer; run it from the project's venv"
    )
    return {"kind": "python", "name": "python", "version": version, "ok": ok, "note": note}


def _package_row(dist: str, module: str) -> dict:
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        return {
            "kind": "package",
            "name": dist,
            "version": None,
            "ok": False,
            "note": f"not installed; run `pip install -e .` in the repository (it pins {dist})",
        }
    try:
        importlib.import_module(module)
    except Exception as err:  # a broken install shows up as any import-time error, and the row should say which
        return {
            "kind": "package",
            "name": dist,
            "version": version,
            "ok": False,
            "note": f"installed but `import {module}` fails: {type(err).__name__}: {err}",
        }
    return {"kind": "package", "name": dist, "version": version, "ok": True, "note": f"import {module}"}


def _binary_row(name: str, found: dict) -> dict:
    if found.get("error"):
        return {"kind": "binary", "name": name, "version": None, "ok": False, "note": found["error"]}
    return {"kind": "binary", "name": name, "version": found["version"], "ok": True, "note": found["path"]}
