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
