"""Where the lab keeps its binaries, state and logs, so every entry point agrees without being told."""

from __future__ import annotations

import os
from pathlib import Path

# This file is lab_services/core/paths.py: the package is one folder up.
PACKAGE_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = PACKAGE_DIR.parent


def cache_dir() -> Path:
    """Downloaded server binaries live here; `LAB_CACHE_DIR` moves them (CI and conda users share one)."""
    return Path(os.environ.get("LAB_CACHE_DIR") or REPO_DIR / ".cache")


def state_dir() -> Path:
    """Pid files, cluster state and logs of the running lab; `LAB_STATE_DIR` gives each test its own."""
    path = Path(os.environ.get("LAB_STATE_DIR") or REPO_DIR / ".lab")
    path.mkdir(parents=True, exist_ok=True)
    return path
