"""Fixtures several lesson modules share: the small Consul-only lab the streaming lessons run on."""

from __future__ import annotations

import pytest
from labs import consul_watcher, local_lab

STREAM_IDS = ["user-1", "user-2", "user-3"]


@pytest.fixture(scope="module")
def stream_lab(tmp_path_factory):
    """One Consul server and three instances registered there only: what lessons 05 and 07 stream across."""
    with local_lab(
        tmp_path_factory.mktemp("stream"),
        consul_servers=1,
        etcd_members=0,
        services=3,
        prometheus=False,
        registry="consul",
    ) as lab:
        yield lab


@pytest.fixture()
def stream_watcher(stream_lab):
    """A started watcher that already lists the three instances."""
    with consul_watcher(stream_lab, STREAM_IDS) as w:
        yield w
