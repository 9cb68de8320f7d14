"""binder/: what repo2docker (Binder) builds the self-paced lab from agrees with the rest of the repository.

No image is built here (repo2docker needs a Docker engine and a registry): these check the files repo2docker reads,
run the parts that run without it (the start script, JupyterLab with the image's configuration), and check
.dockerignore with the library repo2docker itself uses for it (docker-py).
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from docker.utils.build import exclude_paths

from lab_services.core.paths import REPO_DIR
from lab_services.core.ports import PortAllocator
from lab_services.core.wait import wait_for
from lab_services.runtime import binaries, processes

BINDER = REPO_DIR / "binder"
CONFIGS = (
    "jupyter_server_config.d/discovery-lab.json",
    "jupyter_lab_config.json",
    "jupyter_notebook_config.json",
)


def _normalise(requirement: str) -> str:
    name, _, version = requirement.partition("==")
    return f"{re.sub(r'[-_.]+', '-', name.strip().lower())}=={version.strip()}"


def _commands(script: Path) -> list[str]:
    """A shell script's command lines, without comments and blank lines."""
    return [line.strip() for line in script.read_text().splitlines() if line.strip() and line.strip()[0] != "#"]


def _first_lesson() -> str:
    return "notebooks/" + sorted((REPO_DIR / "notebooks").glob("00_*.ipynb"))[0].name


def test_repo2docker_reads_binder_only():
    # With both folders repo2docker refuses to build; with one, it ignores the root's environment.yml and .dockerignore.
    assert BINDER.is_dir() and not (REPO_DIR / ".binder").exists()


def test_binder_environment_mirrors_the_root_one_and_pyproject():
    ours, root = (
        yaml.safe_load((BINDER / "environment.yml").read_text()),
        yaml.safe_load((REPO_DIR / "environment.yml").read_text()),
    )
    assert ours == root, "binder/environment.yml must be a copy of environment.yml (repo2docker reads only binder's)"
    project = tomllib.loads((REPO_DIR / "pyproject.toml").read_text())["project"]
    wanted = {_normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    (pip,) = [d["pip"] for d in ours["dependencies"] if isinstance(d, dict)]
    assert {_normalise(r) for r in pip} == wanted


def test_postbuild_is_an_executable_bash_script_that_parses():
    post_build = BINDER / "postBuild"
    assert post_build.stat().st_mode & 0o111 == 0o111
    assert post_build.read_text().startswith("#!/bin/bash\n")
    assert subprocess.run(["bash", "-n", str(post_build)], capture_output=True).returncode == 0
    assert "set -euo pipefail" in _commands(post_build), "a failed step must fail the build"


def test_postbuild_installs_the_package_without_touching_the_pinned_dependencies():
    installs = [c for c in _commands(BINDER / "postBuild") if "pip install" in c]
    assert len(installs) == 1
    words = installs[0].split()
    assert "--no-deps" in words and words[words.index("-e") + 1] == "."


def test_postbuild_fetches_the_binaries_as_make_setup_does():
    dry_run = subprocess.run(
        ["make", "-n", "-B", "setup"], cwd=REPO_DIR, capture_output=True, text=True, check=True
    ).stdout
    (make_fetch,) = [line for line in dry_run.splitlines() if re.search(r"\bdiscovery-lab fetch\b", line)]
    words = make_fetch.split()
    program = next(i for i, word in enumerate(words) if Path(word).name == "discovery-lab")
    # make runs it from the checkout's .venv; in the image the same console script is on PATH.
    fetch = " ".join(["discovery-lab", *words[program + 1 :]])
    assert fetch in _commands(BINDER / "postBuild"), f"make setup runs `{fetch}`; postBuild must too"


def test_apt_txt_brings_the_keyring_the_fetch_verifies_with():
    packages = [line.partition("#")[0].strip() for line in (BINDER / "apt.txt").read_text().splitlines()]
    packages = [p for p in packages if p]
    assert packages == ["debian-archive-keyring"]
    # Where that package puts the keyring on Debian and Ubuntu alike.
    assert binaries.KEYRING == "/usr/share/keyrings/debian-archive-keyring.gpg"


def test_start_runs_the_server_with_the_local_runtime(tmp_path):
    start = BINDER / "start"
    assert start.stat().st_mode & 0o111 == 0o111
    done = subprocess.run(
        [str(start), sys.executable, "-c", "import os, sys; print(os.environ['LAB_BACKEND'], sys.argv[1:])", "a b"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "LAB_BACKEND": "compose"},
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "local ['a b']"


def test_every_server_configuration_opens_lesson_00():
    urls = {json.loads((BINDER / "jupyter" / name).read_text()).popitem()[1]["default_url"] for name in CONFIGS}
    assert urls == {f"/lab/tree/{_first_lesson()}"}
    assert (REPO_DIR / _first_lesson()).is_file()


@pytest.mark.servers
def test_jupyterlab_with_binders_configuration_redirects_to_lesson_00(tmp_path):
    """`jupyter lab` as the image would start it: its configuration from binder/jupyter/, the repository as root."""
    port = PortAllocator("127.0.0.1").free(8950)
    token = secrets.token_hex(16)
    argv = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1"]
    argv += [f"--ServerApp.port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={REPO_DIR}"]
    # A copy: Jupyter may write into its configuration folder, and the repository's must stay as committed.
    shutil.copytree(BINDER / "jupyter", tmp_path / "config")
    env = {
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    server = processes.spawn(
        "jupyterlab",
        argv,
        log_path=tmp_path / "logs" / "jupyterlab.log",
        env=env,
        cwd=tmp_path,
        base=tmp_path / "state",
    )

    def location() -> str | None:
        if not server.alive():
            raise RuntimeError(f"JupyterLab exited with code {server.popen.poll()}:\n{server.tail()}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", f"/?token={token}")
            response = connection.getresponse()
            return response.getheader("Location") if response.status == 302 else None
        finally:
            connection.close()

    try:
        redirect = wait_for(location, 60, "JupyterLab to redirect /")
    finally:
        server.stop(timeout=20)
    assert redirect.split("?")[0] == f"/lab/tree/{_first_lesson()}"


def test_dockerignore_keeps_a_checkouts_own_files_out_of_the_image(tmp_path):
    checkout = tmp_path / "checkout"
    kept = ["pyproject.toml", "binder/postBuild", "notebooks/00_welcome_and_setup.ipynb", "lab_services/cli.py"]
    dropped = [
        ".venv/bin/python",
        ".cache/bin/consul",
        ".lab/pids/consul.json",
        ".classroom/hub/jupyterhub.sqlite",
        "test-artifacts/junit.xml",
        "lab_services/__pycache__/cli.cpython-311.pyc",
        "notebooks/.ipynb_checkpoints/00-checkpoint.ipynb",
        "service_discovery_lab.egg-info/PKG-INFO",
    ]
    for name in kept + dropped:
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text("")
    # How repo2docker reads binder/.dockerignore, then the very function it filters the build context with.
    patterns = [line.strip() for line in (BINDER / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    context = set(exclude_paths(str(checkout), patterns))
    assert set(kept) <= context
    assert not context & set(dropped), sorted(context & set(dropped))
    assert (Path(".venv") / "bin").as_posix() not in context
