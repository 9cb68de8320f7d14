"""Whether the compose tests can run here: a Docker engine and compose v2, else skip saying why (in CI: fail)."""

from __future__ import annotations

import os

import pytest

from lab_services.runtime.compose import engine


def require_engine() -> None:
    """Skip (or, with CI=true, fail) unless a Docker engine answers and `docker compose` v2 is installed."""
    try:
        engine.client().close()
        engine.compose_version()
    except engine.DockerUnavailableError as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a Docker engine for the compose runtime (.ci/run starts one): {err}")
        pytest.skip(f"no Docker engine for the compose runtime: {err}")


def require_compose_cli() -> None:
    """Skip (or fail in CI) unless `docker compose` v2 runs; validating a file needs no engine."""
    try:
        engine.compose_version()
    except engine.DockerUnavailableError as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs docker compose v2 (.ci/run installs it): {err}")
        pytest.skip(str(err))
