"""A learner's server, as the hub starts it on either spawner: the lessons copied into their home once (what they
change there is theirs and survives a restart), lesson 00's lab started in the background, then JupyterHub's own
`jupyterhub-singleuser` in this process.

The lab starts while JupyterLab loads and the learner finds lesson 00, so that its first cell reuses a lab that is
(nearly) up instead of starting one: a hosted lab is ready when the learner arrives. It belongs to this server, so
stopping the learner's server stops it; a lesson that needs a bigger lab restarts it, as on a laptop.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path

from lab_services.core.paths import REPO_DIR

FIRST_LESSON = "00_welcome_and_setup.ipynb"
# Lesson 00's parameters cell (tests/classroom/test_singleuser.py holds them equal).
FIRST_LAB = {"consul_servers": 1, "etcd_members": 1, "services": 2}


def copy_lessons(home: Path) -> list[str]:
    """The lessons this home does not have yet, copied in; their names."""
    home.mkdir(parents=True, exist_ok=True)
    copied = []
    for lesson in sorted((REPO_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if not (home / lesson.name).exists():
            shutil.copy2(lesson, home / lesson.name)
            copied.append(lesson.name)
    return copied


def start_first_lab() -> threading.Thread:
    """Lesson 00's lab, started by a thread of this server; a failure is printed to the server's log and the lesson's
    own first cell starts the lab (and shows the error) as it would without this."""

    def start() -> None:
        from lab_services.runtime.backends import ensure_cluster

        try:
            ensure_cluster(**FIRST_LAB)
        except Exception as err:  # The learner's first cell tries again and shows them why.
            print(f"lesson 00's lab did not start in the background: {err}", file=sys.stderr)

    thread = threading.Thread(target=start, name="first-lab", daemon=True)
    thread.start()
    return thread


def main() -> None:
    copy_lessons(Path.home())
    start_first_lab()
    os.chdir(Path.home())
    from jupyterhub.singleuser import main as singleuser  # JupyterHub's own `jupyterhub-singleuser`, in this process

    sys.argv[0] = "jupyterhub-singleuser"
    sys.exit(singleuser())


if __name__ == "__main__":
    main()
