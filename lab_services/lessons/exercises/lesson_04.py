"""Lesson 04's exercise: grant a lease, attach a key to it, keep it alive from a thread, watch it expire when you stop.

No registrar this time: the learner writes `attach(etcd, key, ttl)` (grant the lease, put the key under it, return
the lease) and `keep_alive(lease, stop)` (refresh until `stop` is set). The checker runs the keepalive in a thread
for longer than the TTL, then stops it and times etcd deleting the key, through a watch.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import pyetcd

from lab_services.core.addresses import etcd_endpoints
from lab_services.lessons.exercises.verdict import Verdict
from lab_services.registry.etcd import etcd_client

NAME = "04-lease"
TTL_S = 3
KEY = "/lesson04/exercise"


def check(
    attach: Callable[..., Any], keep_alive: Callable[..., Any], endpoints: list[str], hold: float = TTL_S + 1.0
) -> Verdict:
    """04-lease: `attach(etcd, key, ttl)` returns a lease holding `key`; `keep_alive(lease, stop)` refreshes it until
    stop."""
    if not callable(attach) or not callable(keep_alive):
        return Verdict(NAME, False, "define attach(etcd, key, ttl) and keep_alive(lease, stop)")
    etcd = etcd_client(etcd_endpoints(endpoints), 2.0)
    stop = threading.Event()
    lease = None
    try:
        lease = attach(etcd, KEY, TTL_S)
        if not isinstance(lease, pyetcd.Lease):
            return Verdict(NAME, False, f"attach() returned {lease!r}; return the lease from etcd.lease({TTL_S})")
        value, meta = etcd.get(KEY)
        if value is None:
            return Verdict(
                NAME, False, f"{KEY} is not in etcd after attach(); put it with etcd.put(key, value, lease=lease)"
            )
        if meta.lease_id != lease.id:
            return Verdict(
                NAME,
                False,
                f"{KEY} is attached to lease {meta.lease_id:x}, not to the lease you returned "
                f"({lease.id:x}); pass lease=lease to put()",
            )
        if lease.granted_ttl != TTL_S:
            return Verdict(NAME, False, f"the lease was granted {lease.granted_ttl} s; grant ttl ({TTL_S} s)")
        refresher = threading.Thread(target=keep_alive, args=(lease, stop), name="learner-keepalive", daemon=True)
        refresher.start()
        time.sleep(hold)
        if etcd.get(KEY)[0] is None:
            return Verdict(
                NAME,
                False,
                f"{KEY} expired while keep_alive() ran; call lease.refresh() more often than every {TTL_S} s",
            )
        if not refresher.is_alive():
            return Verdict(NAME, False, "keep_alive() returned before stop was set; loop until stop.is_set()")
        deleted = threading.Event()
        watch_id = etcd.add_watch_callback(
            KEY,
            lambda response: (
                deleted.set()
                if any(isinstance(e, pyetcd.events.DeleteEvent) for e in getattr(response, "events", []))
                else None
            ),
        )
        try:
            stopped = time.monotonic()
            stop.set()
            refresher.join(TTL_S)
            if refresher.is_alive():
                return Verdict(
                    NAME,
                    False,
                    "keep_alive() kept running after stop was set; check stop.is_set() (or stop.wait()) in its loop",
                )
            if not deleted.wait(TTL_S + 2):
                return Verdict(
                    NAME,
                    False,
                    f"{KEY} was still there {TTL_S + 2} s after keep_alive() stopped; "
                    "nothing else may refresh the lease",
                )
            took = time.monotonic() - stopped
        finally:
            etcd.cancel_watch(watch_id)
        return Verdict(
            NAME,
            True,
            f"{KEY} outlived its {TTL_S} s lease for {hold:g} s on your keepalives, and the watch saw "
            f"etcd delete it {took:.1f} s after they stopped",
        )
    finally:
        stop.set()
        if isinstance(lease, pyetcd.Lease):
            # The lease has usually expired already, which is what the exercise makes happen.
            with contextlib.suppress(grpc.RpcError):
                lease.revoke()

        etcd.delete(KEY)
        etcd.close()


def lease_and_keepalive() -> tuple[Callable[..., Any], Callable[..., None]]:
    """The two functions the exercise asks for, as the notebook passes them:
    `lab.check("04-lease", *lease_and_keepalive(), ...)`."""

    def attach(etcd: pyetcd.Etcd3Client, key: str, ttl: int) -> pyetcd.Lease:
        # Grant first, then put under its ID: in Go that is Grant(ctx, ttl) then WithLease(resp.ID), not WithLease(ttl).
        lease = etcd.lease(ttl)
        etcd.put(key, "127.0.0.1:50999", lease=lease)
        return lease

    def keep_alive(lease: pyetcd.Lease, stop: Any) -> None:
        # Every TTL/3: one lost refresh still leaves time for the next before the lease runs out.
        while not stop.is_set():
            lease.refresh()
            stop.wait(lease.granted_ttl / 3)

    return attach, keep_alive


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "In etcd a key does not have a TTL; a lease does, and a key is attached to a lease: grant first "
        "(`etcd.lease(ttl)`), then put the key under it (`etcd.put(key, value, lease=lease)`), and return the"
        " lease."
    ),
    (
        "keep_alive: `while not stop.is_set(): lease.refresh(); stop.wait(lease.granted_ttl / 3)`: refresh "
        "well within the TTL, and end as soon as stop is set."
    ),
)

SOLUTION = lease_and_keepalive
