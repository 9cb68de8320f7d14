"""Follow the instances of a service in etcd: read the prefix, then watch it from the next revision.

The read returns the instances and the store's revision; watching from revision+1 delivers every later
put and delete exactly once, so nothing falls between the read and the watch. When the watch breaks (the
member died, or the revision was compacted away) the watcher reads the prefix again and watches anew,
backing off between attempts; with several endpoints, pyetcd moves on to the next after a failure.

Every layout `parse_instance` reads is followed (the lab's JSON, the Go articles' keys, etcd's naming format), so
instances written by other programs in the same cluster are called like the lab's own. A key in no layout it reads
is logged once, with the key and why, kept in `unreadable`, and skipped: the watch goes on.
"""

from __future__ import annotations

import contextlib
import logging
import queue

from pyetcd import events as etcd_events

from lab_services.core.addresses import etcd_endpoints
from lab_services.core.backoff import Backoff
from lab_services.core.instance import ServiceInstance
from lab_services.discovery.instance import instance_from_etcd
from lab_services.discovery.watcher import Watcher
from lab_services.registry.etcd import (
    DEFAULT_PREFIX,
    etcd_client,
    parse_instance,
    service_prefix,
)

log = logging.getLogger(__name__)


class EtcdWatcher(Watcher):
    """Follows `service` under `prefix` in etcd (keys `{prefix}/{service}/{id}`, in any layout `parse_instance` reads).

    >>> w = EtcdWatcher("user", ["127.0.0.1:2379"]).start()
    """

    source = "etcd"

    def __init__(
        self,
        service: str,
        endpoints: str | list[str] | tuple[str, ...] = ("127.0.0.1:2379",),
        prefix: str = DEFAULT_PREFIX,
        *,
        request_timeout: float = 2.0,
        backoff: Backoff | None = None,
        max_events: int = 1000,
    ):
        super().__init__(service, backoff=backoff, max_events=max_events)
        self.endpoints = etcd_endpoints(endpoints)
        self.prefix = service_prefix(prefix, service)
        self.revision: int | None = None
        # Keys in no layout the watcher reads, and why; each is logged once (again only if its reason changes).
        self.unreadable: dict[str, str] = {}
        # The instance id each readable key holds, so a delete removes the right instance whatever the layout.
        self._ids: dict[str, str] = {}
        self._client = etcd_client(self.endpoints, request_timeout)

    @property
    def where(self) -> str:
        endpoint = self._client.endpoint_in_use
        where = endpoint.netloc if endpoint is not None else ",".join(f"{h}:{p}" for h, p in self.endpoints)
        return f"etcd at {where} under {self.prefix}"

    def _decode(self, key: bytes, value: bytes) -> ServiceInstance | None:
        name = key.decode(errors="replace")
        try:
            instance = instance_from_etcd(parse_instance(key, value))
        except ValueError as err:
            self._ids.pop(name, None)
            if self.unreadable.get(name) != str(err):
                self.unreadable[name] = str(err)
                log.warning("%s: skipping %s", self.where, err)
            return None
        self.unreadable.pop(name, None)
        self._ids[name] = instance.id
        return instance

    def _forget(self, key: bytes) -> str | None:
        """A deleted key: the id of the instance it held, if it held one."""
        name = key.decode(errors="replace")
        self.unreadable.pop(name, None)
        return self._ids.pop(name, None)

    def _follow(self) -> None:
        response = self._client.get_prefix_response(self.prefix)
        snapshot = {}
        present = {kv.key.decode(errors="replace") for kv in response.kvs}
        # Keys deleted while the watch was broken: forget them, so each is reported afresh if it comes back.
        for gone in (set(self._ids) | set(self.unreadable)) - present:
            self._ids.pop(gone, None)
            self.unreadable.pop(gone, None)
        for kv in response.kvs:
            instance = self._decode(kv.key, kv.value)
            if instance is not None:
                snapshot[instance.id] = instance
        self.revision = response.header.revision
        self._apply(snapshot)

        updates: queue.Queue = queue.Queue()
        watch_id = self._client.add_watch_prefix_callback(self.prefix, updates.put, start_revision=self.revision + 1)
        self.backoff.reset()
        try:
            while not self._stopping.is_set():
                try:
                    update = updates.get(timeout=0.5)
                except queue.Empty:
                    continue
                # pyetcd hands the callback an exception when the stream breaks or the revision was compacted.
                if isinstance(update, Exception):
                    raise update
                current = {i.id: i for i in self.instances()}
                for event in update.events:
                    if isinstance(event, etcd_events.PutEvent):
                        held = self._ids.get(event.key.decode(errors="replace"))
                        instance = self._decode(event.key, event.value)
                        if held is not None and (instance is None or instance.id != held):
                            current.pop(held, None)
                        if instance is not None:
                            current[instance.id] = instance
                    elif isinstance(event, etcd_events.DeleteEvent):
                        current.pop(self._forget(event.key), None)
                self.revision = update.header.revision
                self._apply(current)
        finally:
            # The stream may be gone already, and then there is nothing to cancel.
            with contextlib.suppress(Exception):
                self._client.cancel_watch(watch_id)

    def _close(self) -> None:
        self._client.close()
