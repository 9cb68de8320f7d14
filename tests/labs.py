"""A real local lab for one test module, always taken down, whatever the test did."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from lab_services.runtime import processes
from lab_services.runtime.cluster import ClusterConfig
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
