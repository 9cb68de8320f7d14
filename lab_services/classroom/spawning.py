"""How each learner's server starts and stops on the hub: a corner of their own (`core.learner`), their own copies of
the lessons, and their lab stopped with their server, so a stopped hub leaves no learner's process behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from lab_services.classroom.settings import HubSettings
from lab_services.core.learner import learner_environment
from lab_services.core.paths import REPO_DIR

FIRST_LESSON = "00_welcome_and_setup.ipynb"


def learner_env(spawner: Any, settings: HubSettings) -> dict[str, str]:
    """The learner's state directory, port offset and free-port slice, from the hub's id of the user (unique)."""
    slot = settings.first_slot + spawner.user.id - 1
    return learner_environment(spawner.user.name, slot, settings.data_dir / "learners")


def copy_lessons(home: Path) -> None:
    """The lessons into a learner's home, once: what they change there is theirs and survives a restart."""
    home.mkdir(parents=True, exist_ok=True)
    for lesson in sorted((REPO_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if not (home / lesson.name).exists():
            shutil.copy2(lesson, home / lesson.name)


def stop_lab(environment: dict[str, str]) -> None:
    """`discovery-lab down` in the learner's corner: their lab's engine outlives a kernel by design, not a server."""
    subprocess.run(
        [sys.executable, "-m", "lab_services.cli", "--backend", "local", "down"],
        env={**os.environ, **environment, "LAB_BACKEND": "local"},
        capture_output=True,
        timeout=120,
        check=False,
    )


def configure(c: Any, settings: HubSettings) -> None:
    """The spawner part of JupyterHub's configuration `c`."""
    c.Spawner.default_url = f"/lab/tree/{FIRST_LESSON}"
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 90
    _local(c, settings)


def _local(c: Any, settings: HubSettings) -> None:
    """Every learner a process of this machine, as the hub's own user (SimpleLocalProcessSpawner): their own home,
    state directory and ports; the same Python as the hub, so the lab's package and binaries are already there."""
    homes = settings.data_dir / "homes"
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = str(homes / "{username}")
    c.Spawner.cmd = [str(Path(sys.executable).with_name("jupyterhub-singleuser"))]
    if os.geteuid() == 0:
        # jupyterhub-singleuser refuses root without it; a real classroom runs the hub as an ordinary user.
        c.Spawner.args = ["--allow-root"]

    def pre_spawn(spawner: Any) -> None:
        copy_lessons(homes / spawner.user.name)
        spawner.environment = {**spawner.environment, **learner_env(spawner, settings), "LAB_BACKEND": "local"}

    def post_stop(spawner: Any) -> None:
        stop_lab(learner_env(spawner, settings))

    c.Spawner.pre_spawn_hook = pre_spawn
    c.Spawner.post_stop_hook = post_stop
