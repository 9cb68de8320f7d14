"""Follow the passing instances of a service in Consul with blocking queries on /v1/health/service/<name>?passing.

A blocking query (`index` + `wait`) is answered as soon as the result changes, or after `wait` with the
same index; a change arrives within milliseconds (docs/architecture.md). If the index goes backwards (a restarted
dev server) the watcher starts again from a fresh read. When a server is unreachable the watcher backs off
and asks the next one of the given servers; it keeps the last known instances until one answers.
"""

from __future__ import annotations

import consul

from lab_services.core.addresses import consul_http_addresses
from lab_services.core.backoff import Backoff
from lab_services.discovery.instance import instance_from_consul
from lab_services.discovery.routing import matches
from lab_services.discovery.watcher import Watcher
from lab_services.registry.spec import parse_duration


class ConsulWatcher(Watcher):
    """Follows `service` in Consul; optionally only the instances with `tag`, matching `filter_expr`, having `meta`.

    `filter_expr` is sent to Consul (`?filter=`, Consul >= 1.5), so Consul itself leaves the other instances out,
    e.g. `'Service.Meta.version == "v2"'`; `meta` is matched here, in the client, after Consul answered.

    >>> w = ConsulWatcher("user", ["127.0.0.1:8500", "127.0.0.2:8500"], tag="v1").start()
    """

    source = "consul"

    def __init__(
        self,
        service: str,
        consul_http: str | list[str] | tuple[str, ...] = "127.0.0.1:8500",
        tag: str | None = None,
        meta: dict[str, str] | None = None,
        wait: str = "30s",
        *,
        filter_expr: str | None = None,
        request_timeout: float = 2.0,
        backoff: Backoff | None = None,
        max_events: int = 1000,
    ):
        super().__init__(service, backoff=backoff, max_events=max_events)
        self.servers = consul_http_addresses(consul_http)
        parse_duration(wait)  # a typo such as '30' fails here, not as a retry loop
        self.wait = wait
        self.tag = tag
        self.meta = dict(meta or {})
        self.filter_expr = filter_expr
        self.index: int | None = None
        self._current = 0
        # One client per server, made once: requests keeps the connection open between blocking queries.
        self._clients = [consul.Consul(host=h, port=p, connections_timeout=request_timeout) for h, p in self.servers]

    @property
    def server(self) -> str:
        """The Consul server asked now, e.g. '127.0.0.1:8500'."""
        host, port = self.servers[self._current]
        return f"{host}:{port}"

    @property
    def where(self) -> str:
        return f"consul at {self.server}"

    def _follow(self) -> None:
        client = self._clients[self._current]
        while not self._stopping.is_set():
            index, entries = client.health.service(
                self.service,
                index=self.index,
                wait=self.wait if self.index else None,
                passing=True,
                tag=self.tag,
                filter_expr=self.filter_expr,
            )
            index = int(index)
            # Consul's rule: an index that went backwards means the server's state was reset; read afresh.
            self.index = index if self.index is None or index >= self.index else None
            if self._stopping.is_set():
                return
            instances = (instance_from_consul(e) for e in entries)
            self._apply({i.id: i for i in instances if matches(i, self.meta)})
            self.backoff.reset()

    def _on_error(self, err: Exception) -> None:
        # Another server may answer; its index need not match this one's, so start from a fresh read.
        self._current = (self._current + 1) % len(self.servers)
        self.index = None

    def _close(self) -> None:
        for client in self._clients:
            client.http.session.close()
