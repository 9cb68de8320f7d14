"""A learner's server, as the hub starts it on either spawner: the lessons copied into their home once (what they
change there is theirs and survives a restart), then JupyterHub's own `jupyterhub-singleuser` in this process."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from lab_services.core.paths import REPO_DIR

FIRST_LESSON = "00_welcome_and_setup.ipynb"


def copy_lessons(home: Path) -> list[str]:
    """The lessons this home does not have yet, copied in; their names."""
    home.mkdir(parents=True, exist_ok=True)
    copied = []
    for lesson in sorted((REPO_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if not (home / lesson.name).exists():
            shutil.copy2(lesson, home / lesson.name)
            copied.append(lesson.name)
    return copied


def main() -> None:
    copy_lessons(Path.home())
    os.chdir(Path.home())
    from jupyterhub.singleuser import main as singleuser  # JupyterHub's own `jupyterhub-singleuser`, in this process

    sys.argv[0] = "jupyterhub-singleuser"
    sys.exit(singleuser())


if __name__ == "__main__":
    main()
