"""A real local lab for one test module, always taken down, whatever the test did."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from lab_services.discovery import ConsulWatcher
from lab_services.runtime import processes
from lab_services.runtime.config import ClusterConfig
from lab_services.runtime.local import LocalCluster


@contextmanager
def local_lab(base: Path, **shape) -> Iterator[LocalCluster]:
    lab = LocalCluster(ClusterConfig(**shape), base=base)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()
    assert processes.live_records(base) == [], "the lab left processes behind after down"


@contextmanager
def consul_watcher(lab: LocalCluster, ids: list[str]) -> Iterator[ConsulWatcher]:
    """A started watcher on the lab's Consul that already lists exactly `ids`."""
    watcher = ConsulWatcher("user", lab.status().consul.http, wait="5s").start()
    try:
        assert watcher.wait_for(lambda xs: [i.id for i in xs] == ids, 15), f"the watcher never listed {ids}"
        yield watcher
    finally:
        watcher.stop()
