"""The two ways to install the lab agree, and saved lessons carry no outputs."""

from __future__ import annotations

import json
import re
import tomllib

from lab_services.core.paths import REPO_DIR


def _normalise(requirement: str) -> str:
    name, _, version = requirement.partition("==")
    return f"{re.sub(r'[-_.]+', '-', name.strip().lower())}=={version.strip()}"


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((REPO_DIR / "pyproject.toml").read_text())["project"]
    wanted = {_normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    listed = {
        _normalise(line.strip()[2:])
        for line in (REPO_DIR / "environment.yml").read_text().splitlines()
        if line.strip().startswith("- ") and "==" in line
    }
    assert listed == wanted, (
        f"only in pyproject: {sorted(wanted - listed)}; only in environment.yml: {sorted(listed - wanted)}"
    )


def test_every_dependency_is_pinned():
    project = tomllib.loads((REPO_DIR / "pyproject.toml").read_text())["project"]
    loose = [r for r in project["dependencies"] + project["optional-dependencies"]["dev"] if "==" not in r]
    assert not loose, f"pin these in pyproject.toml: {loose}"


def test_notebooks_are_saved_without_outputs():
    notebooks = sorted((REPO_DIR / "notebooks").glob("*.ipynb"))
    assert notebooks, "no lessons found in notebooks/"
    dirty = [
        nb.name
        for nb in notebooks
        for cell in json.loads(nb.read_text())["cells"]
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, f"strip outputs before committing: {sorted(set(dirty))}"


def test_notebooks_open_with_a_parameters_cell():
    for nb in sorted((REPO_DIR / "notebooks").glob("*.ipynb")):
        code = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        assert "parameters" in code[0].get("metadata", {}).get("tags", []), (
            f"{nb.name}: first code cell must be tagged 'parameters'"
        )


def _make_dry_run(target: str) -> str:
    """What `make TARGET` would run on a fresh clone (-B: as if nothing were built yet), without running it."""
    import subprocess

    return subprocess.run(["make", "-n", "-B", target], cwd=REPO_DIR, capture_output=True, text=True, check=True).stdout


def test_make_lab_installs_no_system_package():
    assert "apt-get" not in _make_dry_run("lab") and "sudo" not in _make_dry_run("lab")


def test_make_test_still_installs_the_browser_for_ci():
    assert "apt-get install -y --no-install-recommends chromium" in _make_dry_run("test")
