"""The package's three layers hold: imports only go down (lessons -> library -> core), as docs/architecture.md draws.

Every import statement of every module is read with `ast` (function-level and TYPE_CHECKING imports too,
because a lazy import upwards is still an upward dependency).
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from lab_services.core.paths import PACKAGE_DIR

# Rank of each top-level part of the package: a module may import only parts of its own rank or lower.
CORE, LIBRARY, LESSONS, CONSUMERS = 0, 1, 2, 3
RANKS = {
    "__init__": CORE,
    "_proto": CORE,
    "core": CORE,
    "registry": LIBRARY,
    "discovery": LIBRARY,
    "service": LIBRARY,
    "runtime": LIBRARY,
    "resilience": LIBRARY,
    "tls": LIBRARY,
    "metrics": LIBRARY,
    "protogen": LIBRARY,
    "tracing": LIBRARY,
    "classroom": LIBRARY,
    "lessons": LESSONS,
    "cli": CONSUMERS,
    "bench": CONSUMERS,
}
# Library parts that must not import each other although they share a layer: a client never loads the server.
FORBIDDEN = {("discovery", "service")}
MODULES = sorted(p for p in PACKAGE_DIR.rglob("*.py") if "_proto" not in p.parts)


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _name(path) -> str:
    relative = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    return ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)


def _imports(path) -> list[str]:
    """Every lab_services module named by an import in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from lab_services import lessons` names the part in the alias, not in the module.
            found += [f"{node.module}.{a.name}" if node.module == "lab_services" else node.module for a in node.names]
    return [name for name in found if name == "lab_services" or name.startswith("lab_services.")]


def test_every_part_of_the_package_has_a_layer():
    unknown = {_part(_name(p)) for p in MODULES} - set(RANKS)
    assert not unknown, f"give these parts of lab_services a layer in RANKS: {sorted(unknown)}"


@pytest.mark.parametrize("path", MODULES, ids=[_name(p) for p in MODULES])
def test_imports_only_go_down_the_layers(path):
    here = _part(_name(path))
    upward = [name for name in _imports(path) if RANKS.get(_part(name), CONSUMERS) > RANKS[here]]
    across = [name for name in _imports(path) if (here, _part(name)) in FORBIDDEN]
    assert not upward, f"{_name(path)} ({here}) imports a higher layer: {upward}; see docs/architecture.md"
    assert not across, f"{_name(path)} imports {across}: discovery is what clients load, and must not load the server"


def _loaded(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    return set(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split())


def test_a_client_of_discovery_does_not_load_the_server():
    loaded = _loaded("import lab_services.discovery")
    assert not {m for m in loaded if m.startswith(("lab_services.service", "lab_services.lessons"))}


def test_a_service_process_starts_light():
    loaded = _loaded("import lab_services.service.main")
    heavy = {
        m for m in loaded if m.startswith(("lab_services.runtime", "lab_services.lessons", "ipywidgets", "matplotlib"))
    }
    assert not heavy, f"a service process would import {sorted(heavy)}"


# -- the runtime port: callers see `runtime.Cluster`, never an adapter ---------------------------------------------
ADAPTERS = ("lab_services.runtime.local", "lab_services.runtime.compose")


def _outside_runtime() -> list:
    return [p for p in MODULES if _part(_name(p)) != "runtime"]


@pytest.mark.parametrize("path", _outside_runtime(), ids=[_name(p) for p in _outside_runtime()])
def test_no_module_outside_runtime_imports_an_adapter(path):
    found = [name for name in _imports(path) if name.startswith(ADAPTERS)]
    assert not found, f"{_name(path)} imports {found}: use runtime.open_cluster() and the Cluster port"


def test_both_adapters_export_the_same_names():
    import lab_services.runtime.compose as compose
    import lab_services.runtime.local as local

    assert sorted(local.__all__) == sorted(compose.__all__) == ["NAME", "open_cluster"]
    assert (local.NAME, compose.NAME) == ("local", "compose")
    adapter_modules = {
        kind: {p.stem for p in (PACKAGE_DIR / "runtime" / kind).glob("*.py")} for kind in ("local", "compose")
    }
    # The same job has the same module name in both: the adapter, the engine that runs the lab, its topology.
    assert {"__init__", "cluster", "engine", "topology"} <= adapter_modules["local"] & adapter_modules["compose"]


def _branches_on_runtime(tree: ast.AST) -> list[str]:
    """`isinstance(x, <an adapter>)` or a comparison with the name of a runtime ('local', 'compose')."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance":
            names = {getattr(n, "id", getattr(n, "attr", "")) for n in ast.walk(node.args[1])}
            found += sorted(names & {"LocalCluster", "ComposeCluster", "ProcessGroup"})
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(getattr(o, "attr", "") == "backend" for o in operands) or any(
                isinstance(o, ast.Constant) and o.value in ("local", "compose") for o in operands
            ):
                found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("path", _outside_runtime(), ids=[_name(p) for p in _outside_runtime()])
def test_no_caller_branches_on_which_runtime_it_has(path):
    branches = _branches_on_runtime(ast.parse(path.read_text()))
    assert not branches, f"{_name(path)} checks which runtime it has: {branches}; give the port what it needs instead"


@pytest.mark.parametrize("path", _outside_runtime(), ids=[_name(p) for p in _outside_runtime()])
def test_no_module_outside_runtime_spawns_a_process(path):
    """Every process goes through the runtime (`Cluster.start_auxiliary`, `processes.spawn`, `binaries.run_tool`),
    so `down`, interpreter exit and the next start after a crash find it."""
    tree = ast.parse(path.read_text())
    spawning = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if (isinstance(node, ast.Import) and any(a.name in ("subprocess", "multiprocessing") for a in node.names))
        or (isinstance(node, ast.ImportFrom) and node.module in ("subprocess", "multiprocessing"))
        or (
            isinstance(node, ast.Attribute)
            and getattr(node.value, "id", "") == "os"
            and node.attr.startswith(("fork", "spawn", "system", "popen", "exec"))
        )
    ]
    assert not spawning, f"{_name(path)} starts processes itself: {spawning}"


def test_bench_and_the_cli_load_no_widget_code():
    loaded = _loaded("import lab_services.bench.startup, lab_services.bench.discovery, lab_services.cli")
    assert not {m for m in loaded if m.startswith(("ipywidgets", "lab_services.lessons"))}
