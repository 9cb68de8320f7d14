"""Build, start and stop one user service instance: gRPC (user service, health, reflection) plus side HTTP.

    server = UserServer(name="user").start()     # free ports on kernel_host(): 127.0.0.1 on the local runtime
    server.address, server.http_address           # "127.0.0.1:41234", "127.0.0.1:41235"
    server.stop(grace=5)

Notebooks and tests run it in-process; `python -m lab_services.service` runs it as a process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine, Sequence
from concurrent import futures
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from lab_services._proto.lab.user.v1 import user_service_pb2_grpc as pb_grpc
from lab_services.core.network import kernel_host, require_lab_host
from lab_services.core.ports import PortInUseError, holder
from lab_services.service.faults import FaultInjector, FaultInterceptor
from lab_services.service.health import HealthState
from lab_services.service.interceptors import ServedByInterceptor
from lab_services.service.metrics import MetricsInterceptor, ServiceMetrics
from lab_services.service.servicer import SERVICE_NAME, UserServicer
from lab_services.service.sidecar_http import SidecarHTTP
from lab_services.service.store import UserStore

if TYPE_CHECKING:
    from lab_services.service.aio_interceptors import StreamLimit
    from lab_services.service.config_store import ConfigStore, SettingsFollower
    from lab_services.service.settings import RuntimeSettings
    from lab_services.tls import ServerTLS

log = logging.getLogger(__name__)

HEALTH_SERVICES = ("", SERVICE_NAME)
SERVER_KINDS = ("aio", "threads")
# Open WatchUsers/ListUsers/ImportUsers/Chat streams one asyncio instance accepts before refusing more.
DEFAULT_MAX_STREAMS = 2000
T = TypeVar("T")
HEALTH_SERVICE_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class UserServer:
    """One instance of the user service; its id defaults to "<name>-<port>" once the port is bound, its host to
    kernel_host()."""

    def __init__(
        self,
        name: str = "user",
        instance_id: str | None = None,
        host: str | None = None,
        port: int = 0,
        http_port: int = 0,
        max_workers: int = 32,
        server_kind: str = "aio",
        max_streams: int = DEFAULT_MAX_STREAMS,
        store: UserStore | None = None,
        tls: ServerTLS | None = None,
        max_connection_age_ms: int | None = None,
        server_options: Sequence[tuple[str, int]] = (),
        interceptors: tuple[grpc.ServerInterceptor | aio.ServerInterceptor, ...] = (),
        config_store: ConfigStore | None = None,
        settings: RuntimeSettings | None = None,
    ):
        self.name = name
        # By default the address this process's servers bind and announce, which Consul's checks can reach.
        self.host = kernel_host() if host is None else require_lab_host(host)
        self.requested_port = port
        self.instance_id = instance_id or ""
        if server_kind not in SERVER_KINDS:
            raise ValueError(f"invalid argument: server_kind: {server_kind!r}; use one of {', '.join(SERVER_KINDS)}")
        if max_streams < 1:
            raise ValueError(f"invalid argument: max_streams: {max_streams}; must be at least 1")
        # "aio" (default): one event loop serves every call; an open stream is a suspended coroutine, and
        # beyond max_streams open streams new ones get RESOURCE_EXHAUSTED. "threads": the old thread pool,
        # where each open stream (watch, chat, health watch) holds one of max_workers threads until it ends,
        # so a few dozen streams starve health checks (lesson 05 shows that failure next to the fix).
        self.server_kind = server_kind
        self.max_workers = max_workers
        self.max_streams = max_streams
        self.stream_limit: StreamLimit | None = None
        self._loop: _LoopThread | None = None
        self.store = store if store is not None else UserStore()  # an empty store is falsy (len 0)
        # With TLS the gRPC port speaks only TLS (mTLS if tls.client_ca is set); the side HTTP port stays plain.
        self.tls = tls
        # Closing connections after this age makes DNS clients re-resolve and find new instances (lesson 03).
        self.max_connection_age_ms = max_connection_age_ms
        # Any other gRPC server channel arguments, e.g. the ping policy a client's keepalive needs (lesson 11).
        bad = [o for o in server_options if not (isinstance(o[0], str) and o[0].startswith("grpc."))]
        if bad:
            raise ValueError(f"invalid argument: server_options: {bad!r}; use ('grpc.<name>', value) pairs")
        self.server_options = list(server_options)
        # Extra interceptors (auth, logging) run after the lab's own metrics, served-by and fault interceptors;
        # grpc.aio.ServerInterceptor ones for the "aio" server, grpc.ServerInterceptor ones for "threads".
        self.extra_interceptors = tuple(interceptors)
        self.health = HealthState(HEALTH_SERVICES)
        self.faults = FaultInjector()
        self.metrics = ServiceMetrics()
        # Runtime settings followed in a configuration centre (lesson 10); only the aio server applies them.
        self.config_store = config_store
        self.settings = settings
        if config_store is not None and settings is None:
            from lab_services.service.settings import RuntimeSettings

            self.settings = RuntimeSettings()
        if self.settings is not None and server_kind != "aio":
            raise ValueError("invalid argument: server_kind: runtime settings (a config store) need the aio server")
        self._follower: SettingsFollower | None = None
        routes = {"/admin/settings": self.settings.report} if self.settings is not None else {}
        self.sidecar = SidecarHTTP(
            self.health,
            self.faults,
            self.metrics.registry,
            self.state,
            self.host,
            http_port,
            routes=routes,
            reset=self.reset_state,
        )
        self.port = 0
        self._server: grpc.Server | aio.Server | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def http_port(self) -> int:
        return self.sidecar.port

    @property
    def http_address(self) -> str:
        return self.sidecar.address

    def start(self) -> UserServer:
        """Bind both ports, start serving, then report SERVING; PortInUseError if a port is taken."""
        credentials = self.tls.credentials() if self.tls else None  # reads the PEM files: fails before binding
        if self.server_kind == "threads":
            server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="grpc"),
                interceptors=[
                    MetricsInterceptor(self.metrics),
                    ServedByInterceptor(lambda: self.instance_id),
                    FaultInterceptor(self.faults, SERVICE_NAME),
                    *self.extra_interceptors,
                ],
                options=self._options(),
            )
            self._serve(server, credentials, UserServicer, self.health.servicer)
            try:
                self.sidecar.start()
            except PortInUseError:
                server.stop(None)  # release the gRPC port we already bound
                raise
            server.start()
        else:
            self._loop = _LoopThread(f"grpc-aio-{self.name}")
            try:
                server = self._loop.run(self._start_aio(credentials))
            except BaseException:
                self._loop.close()
                self._loop = None
                raise
        self._server = server
        if self.config_store is not None and self.settings is not None:
            from lab_services.service.config_store import SettingsFollower
            from lab_services.service.settings import export_metrics

            export_metrics(self.settings, self.metrics.registry)
            self._follower = SettingsFollower(self.config_store, self.settings).start()
        self.set_serving(True)
        log.info(
            "%s serving gRPC (%s) on %s and HTTP on %s",
            self.instance_id,
            self.server_kind,
            self.address,
            self.http_address,
        )
        return self

    async def _start_aio(self, credentials: grpc.ServerCredentials | None) -> aio.Server:
        """Build and start the asyncio server on the loop thread (grpc.aio binds a server to the loop it is made on)."""
        from lab_services.service.aio_interceptors import (
            AsyncFaultInterceptor,
            AsyncMetricsInterceptor,
            AsyncServedByInterceptor,
            StreamLimit,
        )
        from lab_services.service.aio_servicer import AsyncUserServicer

        self.stream_limit = StreamLimit(self.max_streams, SERVICE_NAME, lambda: self.instance_id)
        server = aio.server(
            interceptors=[
                AsyncMetricsInterceptor(self.metrics),
                AsyncServedByInterceptor(lambda: self.instance_id),
                self.stream_limit,
                AsyncFaultInterceptor(self.faults, SERVICE_NAME),
                *self._settings_interceptors(),
                *self.extra_interceptors,
            ],
            options=self._options(),
        )
        try:
            self._serve(server, credentials, AsyncUserServicer, await self.health.serve_on_asyncio())
            self.sidecar.start()
        except PortInUseError:
            await server.stop(None)  # release the gRPC port if it was bound
            self.health.serve_on_threads()
            raise
        await server.start()
        return server

    def _settings_interceptors(self) -> list[aio.ServerInterceptor]:
        if self.settings is None:
            return []
        from lab_services.service.settings import SettingsInterceptor

        return [SettingsInterceptor(self.settings, SERVICE_NAME)]

    def _options(self) -> list[tuple[str, int]]:
        # gRPC sets SO_REUSEPORT by default on Linux: a second server would then silently share
        # a port already in use instead of failing, and calls would land on either at random.
        return (
            [("grpc.so_reuseport", 0)]
            + ([("grpc.max_connection_age_ms", self.max_connection_age_ms)] if self.max_connection_age_ms else [])
            + self.server_options
        )

    def _serve(
        self,
        server: grpc.Server | aio.Server,
        credentials: grpc.ServerCredentials | None,
        servicer: type[UserServicer],
        health_servicer: Any,
    ) -> None:
        """Bind the gRPC port and add the user, health and reflection services (either server kind)."""
        bind = f"{self.host}:{self.requested_port}"
        try:
            if credentials is None:
                self.port = server.add_insecure_port(bind)
            else:
                self.port = server.add_secure_port(bind, credentials)
        except RuntimeError:
            raise PortInUseError(
                f"port {self.requested_port} on {self.host} is in use by {holder(self.requested_port)}; "
                "pass --port 0 for a free one"
            ) from None
        self.instance_id = self.instance_id or f"{self.name}-{self.port}"
        pb_grpc.add_UserServiceServicer_to_server(servicer(self.store, self.instance_id), server)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection((SERVICE_NAME, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME), server)

    def set_serving(self, serving: bool) -> None:
        """Set every health service ("" and the user service) to SERVING or NOT_SERVING."""
        self.health.set_all("SERVING" if serving else "NOT_SERVING")

    def stop(self, grace: float | None = 5.0) -> None:
        """Report NOT_SERVING, end watch streams, let other calls finish for `grace` seconds, then close.

        Watch streams never finish on their own, so they are ended first with UNAVAILABLE and the
        sequence to resume from; otherwise every shutdown would wait out the whole grace period.
        """
        if self._server is None:
            return
        self.set_serving(False)
        if self._follower is not None:
            self._follower.stop()
            self._follower = None
        if self._loop is None:
            stopped = self._server.stop(grace)  # from here on, new calls are refused
            self.store.close_subscriptions()
            stopped.wait()
        else:
            stopped = self._loop.submit(self._server.stop(grace))
            self.store.close_subscriptions()
            stopped.result()
            self._loop.close()
            self._loop = None
            self.health.serve_on_threads()
        self._server = None
        self.sidecar.stop()
        log.info("%s stopped", self.instance_id)

    def reset_state(self) -> dict[str, Any]:
        """What the lab's reset undoes in an instance: injected faults, a flipped health, the users lessons created."""
        self.faults.set(latency_ms=0, error_rate=0)
        self.health.set_all("SERVING")
        return {
            "users_removed": self.store.clear(),
            "faults": self.faults.current.as_dict(),
            "health": self.health.snapshot(),
        }

    def state(self) -> dict[str, Any]:
        """What /admin/state reports: who this is, its health, its faults and its data."""
        return {
            "id": self.instance_id,
            "name": self.name,
            "address": self.address,
            "http": self.http_address,
            "pid": os.getpid(),
            "health": self.health.snapshot(),
            "faults": self.faults.current.as_dict(),
            "users": len(self.store),
            "sequence": self.store.sequence,
            "server": self.server_kind,
            # Read off the loop thread: an int read is atomic, and a figure a moment old is fine here.
            "open_streams": self.stream_limit.open if self.stream_limit else None,
            "max_streams": self.max_streams if self.server_kind == "aio" else None,
            "settings": self.settings.report() if self.settings is not None else None,
        }


class _LoopThread:
    """An asyncio event loop on its own daemon thread, so the synchronous UserServer API can drive an aio server."""

    def __init__(self, name: str):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
