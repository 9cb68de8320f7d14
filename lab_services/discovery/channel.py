"""What both discovery-aware channels share: the grpc.Channel surface generated stubs use, over a watcher."""

from __future__ import annotations

from typing import Any

import grpc

from lab_services.discovery.errors import NoInstanceError
from lab_services.discovery.watcher import Watcher

# A new channel must reconnect quickly to an instance that was restarted, not after gRPC's two-minute backoff.
DEFAULT_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Channels to one address share a global subchannel, with its reconnect backoff, by default: a
    # channel opened for a restarted instance would inherit the dead one's backoff and fail its first call.
    ("grpc.use_local_subchannel_pool", 1),
]


class DiscoveryChannel(grpc.Channel):
    """A grpc.Channel whose calls go to instances `watcher` reports; subclasses make the multi-callables.

    A multi-callable is identified by a key `(kind, method, (serializer, deserializer), kwargs)`, where kind
    is the name of the grpc.Channel method that made it, e.g. 'unary_unary'.
    """

    def __init__(
        self,
        watcher: Watcher,
        channel_options: list[tuple[str, Any]] | None,
        ready_timeout: float,
        credentials: grpc.ChannelCredentials | None = None,
        server_name: str | None = None,
    ):
        self.watcher = watcher
        self.channel_options = list(DEFAULT_CHANNEL_OPTIONS) + list(channel_options or [])
        self.ready_timeout = ready_timeout
        self.credentials = credentials
        # With TLS, the name checked against each instance's certificate; the address itself by default.
        self.server_name = server_name

    def _open(self, target: str, options: list[tuple[str, Any]] | None = None) -> grpc.Channel:
        """A plaintext channel, or a TLS one when the discovery channel was given credentials."""
        options = self.channel_options + list(options or [])
        if self.credentials is None:
            return grpc.insecure_channel(target, options=options)
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        return grpc.secure_channel(target, self.credentials, options=options)

    def _multi_callable(self, key: tuple) -> Any:
        raise NotImplementedError

    def _wait_ready(self) -> None:
        """Before the first snapshot, give the watcher a moment rather than fail with 'no instance'."""
        if not self.watcher.ready:
            self.watcher.wait_ready(self.ready_timeout)

    def _no_instance(self) -> NoInstanceError:
        error = NoInstanceError(self.watcher.service, self.watcher.where)
        if not self.watcher.connected and self.watcher.last_error is not None:
            # Say why the list is empty when the registry itself could not be reached.
            error = NoInstanceError(
                self.watcher.service, f"{self.watcher.where} (unreachable: {self.watcher.last_error})"
            )
        return error

    def _key(self, kind: str, method: str, serializer, deserializer, kwargs: dict) -> tuple:
        return (kind, method, (serializer, deserializer), tuple(sorted(kwargs.items())))

    def unary_unary(self, method, request_serializer=None, response_deserializer=None, **kwargs):
        return self._multi_callable(self._key("unary_unary", method, request_serializer, response_deserializer, kwargs))

    def unary_stream(self, method, request_serializer=None, response_deserializer=None, **kwargs):
        return self._multi_callable(
            self._key("unary_stream", method, request_serializer, response_deserializer, kwargs)
        )

    def stream_unary(self, method, request_serializer=None, response_deserializer=None, **kwargs):
        return self._multi_callable(
            self._key("stream_unary", method, request_serializer, response_deserializer, kwargs)
        )

    def stream_stream(self, method, request_serializer=None, response_deserializer=None, **kwargs):
        return self._multi_callable(
            self._key("stream_stream", method, request_serializer, response_deserializer, kwargs)
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
