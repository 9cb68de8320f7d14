"""JupyterLab as a service of the compose stack: `python -m lab_services.runtime.compose.jupyter` in its container.

It listens on the container's network (Docker publishes it on the learner's 127.0.0.1 only), opens on lesson 00, and
prints the one URL to open, token included, as the last lines of `docker compose up`. The token is
`LAB_JUPYTER_TOKEN` from compose/.env, or one made at the first start and kept in the home volume, so the URL stays
the same across `down` and `up` for a whole week of classes.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

NOTEBOOKS = Path("/lab/notebooks")
FIRST_LESSON = "00_welcome_and_setup.ipynb"


def token(home: Path) -> str:
    """The configured token, else the one kept in `home` (made now on the first start)."""
    chosen = os.environ.get("LAB_JUPYTER_TOKEN", "").strip()
    if chosen:
        return chosen
    kept = home / ".lab-jupyter-token"
    if not kept.exists():
        kept.write_text(secrets.token_hex(24))
        kept.chmod(0o600)
    return kept.read_text().strip()


def argv(port: int, secret: str, notebooks: Path = NOTEBOOKS) -> list[str]:
    """JupyterLab on every address of the container, announcing the URL the learner's browser uses."""
    args = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ServerApp.ip=0.0.0.0",
        "--ServerApp.port=8888",
        "--no-browser",
        f"--ServerApp.root_dir={notebooks}",
        f"--ServerApp.token={secret}",
        f"--ServerApp.custom_display_url=http://127.0.0.1:{port}/lab/tree/{FIRST_LESSON}",
        f"--LabApp.default_url=/lab/tree/{FIRST_LESSON}",
    ]
    if os.geteuid() == 0:
        args.append("--allow-root")  # the default user here, so the Docker socket is reachable on every engine
    return args


def main() -> None:
    port = int(os.environ.get("LAB_JUPYTER_PORT") or 8888)
    secret = token(Path.home())
    url = f"http://127.0.0.1:{port}/lab/tree/{FIRST_LESSON}?token={secret}"
    print(f"\n    The lab is starting. Open this URL in your browser (lesson 00 starts the servers):\n\n    {url}\n")
    print(
        f"    Consul's UI: http://127.0.0.1:{os.environ.get('LAB_CONSUL_PORT', '8500')}/ui/    "
        f"Prometheus: http://127.0.0.1:{os.environ.get('LAB_PROMETHEUS_PORT', '9090')}/targets\n",
        flush=True,
    )
    command = argv(port, secret)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
