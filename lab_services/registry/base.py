"""The life of a registrar, shared by Consul and etcd: register in the background, keep it alive, put it back, clean up.

A registrar owns one daemon thread. It registers (retrying with jittered exponential backoff while the server
is unreachable), then wakes every `tick` seconds to keep the registration alive (TTL heartbeats for Consul, lease
refreshes for etcd) and to verify it still exists. If the server forgot it (a restarted `-dev` agent, an expired
lease) it registers again. The backends only say how to register, keep alive and deregister.
"""

from __future__ import annotations

import logging
import threading

from lab_services.core.backoff import Backoff
from lab_services.registry.spec import ServiceRegistration


class Registrar:
    """Base class: `start()`, `registered`, `wait_registered()`, `stop()`; subclasses fill in the backend calls."""

    backend = "server"
    # Errors meaning "could not reach the server" (logged as unreachable); anything else is a refusal.
    unreachable_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, registration: ServiceRegistration, backoff: Backoff | None = None):
        registration.validate()
        self.registration = registration
        self.backoff = backoff or Backoff()
        self.last_error: str | None = None
        self._log = logging.getLogger(type(self).__module__)
        self._stopping = threading.Event()
        self._registered = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._deregistered = False

    # What each backend provides.
    @property
    def where(self) -> str:
        """The server address as the log messages show it, e.g. '127.0.0.1:8500'."""
        raise NotImplementedError

    @property
    def tick(self) -> float:
        """Seconds between keep-alive rounds."""
        raise NotImplementedError

    def _register(self) -> None:
        """Put the registration in place (idempotent); raise if the server is unreachable or refuses."""
        raise NotImplementedError

    def _keep_alive(self) -> bool:
        """One keep-alive round; False if the server lost the registration, raise if unreachable."""
        raise NotImplementedError

    def _deregister(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Release client resources once nothing more will be sent."""

    # The shared lifecycle.
    @property
    def registered(self) -> bool:
        """True while the last contact with the server confirmed the registration is in place."""
        return self._registered.is_set()

    def wait_registered(self, timeout: float | None = None) -> bool:
        """Block until registered (or `timeout` seconds pass); return whether it is registered."""
        return self._registered.wait(timeout)

    def start(self) -> Registrar:
        """Start the background thread and return at once; calling it again while running does nothing."""
        with self._lock:
            if self._stopped:
                raise RuntimeError(f"{self!r} was stopped; create a new registrar to register again")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"{self.backend}-registrar-{self.registration.instance.id}", daemon=True
                )
                self._thread.start()
        return self

    def stop(self, deregister: bool = True, timeout: float = 10.0) -> None:
        """Stop the thread and, unless `deregister=False`, remove the registration; never raises, safe to repeat.

        `stop(deregister=False)` is the crash drill: heartbeats stop but nothing is removed, so Consul's TTL
        check goes critical and etcd's lease expires on their own. A later `stop()` still deregisters.
        """
        with self._lock:
            self._stopped = True
            thread, self._thread = self._thread, None
        self._stopping.set()
        if thread is not None:
            thread.join(timeout)
        self._registered.clear()
        if deregister and not self._deregistered:
            self._deregistered = True
            try:
                self._deregister()
                self._log.info("deregistered %s from %s at %s", self.registration.instance.id, self.backend, self.where)
            except Exception as err:  # best effort by contract: the server may be gone for good
                self._log.warning(
                    "could not deregister %s from %s at %s (%s); it will expire or stay until removed",
                    self.registration.instance.id,
                    self.backend,
                    self.where,
                    self._describe(err),
                )
            self._close()

    def __enter__(self) -> Registrar:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "registered" if self.registered else ("stopped" if self._stopped else "not registered")
        return f"<{type(self).__name__} {self.registration.instance.id} at {self.where}: {state}>"

    def _describe(self, err: BaseException) -> str:
        return "unreachable" if isinstance(err, self.unreachable_errors) else f"{type(err).__name__}: {err}"

    # A server that answers but is still electing a leader will be ready within moments: poll it
    # quickly instead of backing off as from an outage (subclasses name such errors here).
    not_ready_errors: tuple[type[BaseException], ...] = ()
    NOT_READY_POLL = 0.1

    def _retry_later(self, err: BaseException) -> None:
        self.last_error = self._describe(err)
        if isinstance(err, self.not_ready_errors):
            self._log.info(
                "%s at %s not ready (%s), asking again in %.1fs", self.backend, self.where, err, self.NOT_READY_POLL
            )
            self._stopping.wait(self.NOT_READY_POLL)
            return
        delay = next(self.backoff)
        if isinstance(err, self.unreachable_errors):
            self._log.warning("%s at %s unreachable, retrying in %.1fs", self.backend, self.where, delay)
        else:
            self._log.warning(
                "%s at %s refused %s (%s), retrying in %.1fs",
                self.backend,
                self.where,
                self.registration.instance.id,
                self.last_error,
                delay,
            )
        self._stopping.wait(delay)

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self._registered.is_set():
                try:
                    self._register()
                except Exception as err:  # keep the thread alive whatever the server says; the log tells why
                    self._retry_later(err)
                    continue
                self.backoff.reset()
                self.last_error = None
                self._registered.set()
                self._log.info(
                    "registered %s (%s) with %s at %s",
                    self.registration.instance.id,
                    self.registration.instance.address,
                    self.backend,
                    self.where,
                )
            if self._stopping.wait(self.tick):
                return
            try:
                alive = self._keep_alive()
            except Exception as err:
                self._registered.clear()
                self._retry_later(err)
                continue
            if not alive:
                self._registered.clear()
                self._log.warning(
                    "%s at %s lost %s (restarted or expired?), registering again",
                    self.backend,
                    self.where,
                    self.registration.instance.id,
                )
