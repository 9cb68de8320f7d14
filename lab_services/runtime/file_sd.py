"""Prometheus file_sd for instances registered in etcd: a JSON target file rewritten whenever an etcd watcher sees
a change.

Prometheus has no etcd service discovery, but every build reads `file_sd_configs` (docs/architecture.md). So a
watcher follows the instances in etcd and this writer turns each snapshot into the file Prometheus reads:

    [{"targets": ["127.0.0.1:9101"], "labels": {"instance": "user-1", "service": "user", "registry": "etcd"}}]

The file is replaced atomically (write a temporary file, then rename), so Prometheus never reads half of it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from pathlib import Path

from lab_services.core.instance import ServiceInstance
from lab_services.core.stop_signals import block_stop_signals, wait_for_stop_signal
from lab_services.discovery.watcher import Watcher

log = logging.getLogger(__name__)


def file_sd_groups(instances: list[ServiceInstance]) -> list[dict]:
    """One target group per instance that says where its metrics are (meta `metrics_port`); others are skipped."""
    groups = []
    for instance in sorted(instances, key=lambda i: i.id):
        port = instance.meta.get("metrics_port")
        if not port:
            continue
        groups.append(
            {
                "targets": [f"{instance.host}:{port}"],
                "labels": {"instance": instance.id, "service": instance.name, "registry": "etcd"},
            }
        )
    return groups


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class FileSDWriter:
    """Keeps `path` equal to the watcher's instances as Prometheus file_sd JSON, from `start()` until `stop()`.

    >>> writer = FileSDWriter(EtcdWatcher("user", ["127.0.0.1:2379"]), Path("etcd-targets.json")).start()
    >>> writer.wait_written(lambda groups: len(groups) == 3, timeout=5)
    True
    >>> writer.stop()           # also stops the watcher
    """

    def __init__(self, watcher: Watcher, path: Path | str):
        self.watcher = watcher
        self.path = Path(path)
        self.writes = 0
        self._written: list[dict] | None = None
        self._changed = threading.Condition()
        self._unsubscribe = None

    def start(self) -> FileSDWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Subscribe before starting, so the first snapshot is written too.
        self._unsubscribe = self.watcher.subscribe(lambda event: self.write())
        if not self.watcher.running:
            self.watcher.start()
        # An empty snapshot produces no event, so write once the watcher has read the registry.
        threading.Thread(target=self._first_write, name="file-sd-first-write", daemon=True).start()
        return self

    def _first_write(self) -> None:
        if self.watcher.wait_ready(30):
            self.write()

    def write(self) -> list[dict]:
        """Write the watcher's current instances now (called on the watcher's thread for every event)."""
        groups = file_sd_groups(self.watcher.instances())
        with self._changed:
            if groups != self._written:
                write_atomically(self.path, json.dumps(groups, indent=2))
                self.writes += 1
                self._written = groups
                log.info("wrote %d etcd targets to %s", len(groups), self.path)
            self._changed.notify_all()
        return groups

    def wait_written(self, predicate, timeout: float = 10.0) -> bool:
        """Wait until the groups last written satisfy `predicate(groups)`; False after `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self._written is not None and predicate(self._written), timeout)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.watcher.stop()


def main(argv: list[str] | None = None) -> int:
    """The writer as a process of its own: the compose runtime's `etcd-sd` container, which shares a volume with
    Prometheus.

    The local runtime runs the writer as a thread of its engine process; under compose no such long-lived Python
    process exists, so a container does the same work.
    """
    from lab_services.discovery.etcd_watcher import EtcdWatcher  # the etcd client loads only here

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--etcd", required=True, help="etcd endpoints, host:port,host:port")
    parser.add_argument("--service", default="user", help="the service whose instances Prometheus should scrape")
    parser.add_argument("--out", required=True, help="the target file Prometheus's file_sd_configs reads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    block_stop_signals()
    writer = FileSDWriter(EtcdWatcher(args.service, args.etcd), args.out).start()
    wait_for_stop_signal()
    writer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
