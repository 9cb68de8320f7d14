"""When Debian's archive no longer carries a suite (bullseye is past its LTS), `make setup` says what to do."""

from __future__ import annotations

import dataclasses

import pytest

from lab_services.runtime import binaries


def test_an_unreachable_suite_names_the_binary_its_variable_and_the_compose_runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path))
    # A suite the real mirror does not have, as bullseye will be once it leaves: apt-get update fails for real.
    gone = dataclasses.replace(binaries.TOOLS["consul"], suite="bullseye-gone")
    monkeypatch.setitem(binaries.TOOLS, "consul", gone)
    with pytest.raises(binaries.MissingBinaryError) as err:
        binaries.fetch(["consul"], log=lambda line: None)
    message = str(err.value)
    assert "consul (consul/bullseye-gone; or install it and set LAB_CONSUL_BIN)" in message
    assert "LAB_BACKEND=compose" in message and "bullseye-gone" in message
