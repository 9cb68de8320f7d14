"""The user service's in-memory store: users, a numbered change log, and subscriptions to new changes.

Every change gets the next sequence number and stays in a bounded log, so a watcher that reconnects
with the last sequence it saw is replayed exactly what it missed (no gap, no duplicate), the way an
etcd watch resumes from a revision. Each instance has its own store: instances do not share users.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from lab_services.core.errors import LabError

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Stated limits, in characters: without them a 100 KB name was stored and sent to every watcher. 254 is
# the longest address SMTP can carry (RFC 5321's 256-octet path minus its angle brackets).
MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 254
# An idempotency key is an id (a UUID is 36), not a payload: the store keeps one per remembered request.
MAX_REQUEST_ID = 128


class StoreError(LabError):
    """Base of the errors the servicer turns into gRPC status codes."""


class InvalidUser(StoreError):
    """A field fails validation; the message starts with the field name ("name: must not be empty")."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field


class UserNotFound(StoreError):
    def __init__(self, user_id: str):
        super().__init__(f"user {user_id!r} not found")


class DuplicateEmail(StoreError):
    def __init__(self, email: str, owner: str):
        super().__init__(f"email: {email!r} is already used by user {owner!r}")


class CannotResume(StoreError):
    """The changes after since_sequence cannot all be replayed; the watcher must list users again."""


class StoreClosed(StoreError):
    """The store stopped serving watchers because its server is shutting down."""


@dataclass(frozen=True)
class UserRecord:
    id: str
    name: str
    email: str
    created_at: float


@dataclass(frozen=True)
class Change:
    sequence: int
    kind: str  # "CREATED", "UPDATED" or "DELETED", the names of UserEvent.Kind
    user: UserRecord


def validate(name: str, email: str) -> None:
    """Raise InvalidUser naming the first bad field (lengths first, so an error never echoes a huge value)."""
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidUser("name", f"must be at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    if not name.strip():
        raise InvalidUser("name", "must not be empty")
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidUser("email", f"must be at most {MAX_EMAIL_LENGTH} characters, got {len(email)}")
    if not EMAIL.match(email):
        raise InvalidUser("email", f"{email!r} is not a valid address")


class Subscription:
    """An iterator of changes for one watcher: the replayed backlog first, then live changes.

    Iteration ends when close() is called (the client went away) and raises StoreClosed when the
    store shuts down, so a server can end watch streams promptly instead of waiting out its grace.
    Made with an event `loop`, it is an async iterator instead: the asyncio server waits for changes
    without holding a thread, and changes made on any thread reach it through that loop.
    """

    _CLOSED = object()
    _SHUTDOWN = object()

    def __init__(self, store: UserStore, backlog: list[Change], loop: asyncio.AbstractEventLoop | None = None):
        self._store = store
        self._loop = loop
        self._queue: queue.SimpleQueue[object] | asyncio.Queue[object] = (
            asyncio.Queue() if loop else queue.SimpleQueue()
        )
        for change in backlog:
            self._queue.put_nowait(change)

    def __iter__(self) -> Iterator[Change]:
        assert isinstance(self._queue, queue.SimpleQueue), "an asyncio subscription is iterated with `async for`"
        while (change := self._unwrap(self._queue.get())) is not None:
            yield change

    async def __aiter__(self) -> AsyncIterator[Change]:
        assert isinstance(self._queue, asyncio.Queue), "a thread subscription is iterated with `for`"
        while (change := self._unwrap(await self._queue.get())) is not None:
            yield change

    def _unwrap(self, item: object) -> Change | None:
        """The change, None once closed, or StoreClosed when the store shuts down."""
        if item is self._CLOSED:
            return None
        if item is self._SHUTDOWN:
            raise StoreClosed("the store is shutting down")
        assert isinstance(item, Change)
        return item

    def close(self) -> None:
        self._store._unsubscribe(self)
        self._push(self._CLOSED)

    def _push(self, item: object) -> None:
        if self._loop is None:
            self._queue.put_nowait(item)
            return
        # A closed loop means its server stopped, and nobody reads this watch any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)


class UserStore:
    """Thread-safe users by id, with a change log of at most `history` entries and live subscribers."""

    def __init__(self, history: int = 10_000):
        self._lock = threading.Lock()
        self._users: dict[str, UserRecord] = {}
        self._log: deque[Change] = deque(maxlen=history)
        self._history = history
        self._done: OrderedDict[str, UserRecord] = OrderedDict()  # request_id -> the user that request created
        self._sequence = 0
        self._ids = itertools.count(1)
        self._subscribers: set[Subscription] = set()

    @property
    def sequence(self) -> int:
        """Sequence number of the latest change (0 before the first)."""
        with self._lock:
            return self._sequence

    def __len__(self) -> int:
        with self._lock:
            return len(self._users)

    def create(self, name: str, email: str, request_id: str = "") -> UserRecord:
        """Create a user; a repeated non-empty `request_id` returns the user its first call created, writing nothing."""
        validate(name, email)
        if len(request_id) > MAX_REQUEST_ID:
            raise InvalidUser("request_id", f"is {len(request_id)} characters long; at most {MAX_REQUEST_ID}")
        with self._lock:
            if request_id and request_id in self._done:
                return self._done[request_id]
            self._check_email_free(email)
            user = UserRecord(f"u-{next(self._ids)}", name, email, time.time())
            self._users[user.id] = user
            self._record("CREATED", user)
            if request_id:
                self._done[request_id] = user
                while len(self._done) > self._history:
                    self._done.popitem(last=False)  # the oldest key goes: a retry comes within moments, not days
            return user

    def update(self, user_id: str, name: str, email: str) -> UserRecord:
        validate(name, email)
        with self._lock:
            old = self._get(user_id)
            self._check_email_free(email, allow_owner=user_id)
            user = UserRecord(user_id, name, email, old.created_at)
            self._users[user_id] = user
            self._record("UPDATED", user)
            return user

    def get(self, user_id: str) -> UserRecord:
        with self._lock:
            return self._get(user_id)

    def delete(self, user_id: str) -> UserRecord:
        with self._lock:
            user = self._get(user_id)
            del self._users[user_id]
            self._record("DELETED", user)
            return user

    def clear(self) -> int:
        """Delete every user (each a DELETED change, so watchers follow); the sequence goes on. Returns how many."""
        with self._lock:
            users = list(self._users.values())
            self._users.clear()
            self._done.clear()
            for user in users:
                self._record("DELETED", user)
            return len(users)

    def list(self) -> list[UserRecord]:
        """All users, oldest first (dicts keep insertion order)."""
        with self._lock:
            return list(self._users.values())

    def subscribe(
        self, since_sequence: int | None = None, loop: asyncio.AbstractEventLoop | None = None
    ) -> Subscription:
        """Changes after since_sequence (retained ones replayed first), or from now on if None.

        With `loop`, an async iterator delivered through that event loop (the asyncio server's).

        The backlog is taken and the subscriber registered under one lock, so no change can fall
        between replay and live delivery, and none is delivered twice.
        """
        with self._lock:
            backlog: list[Change] = []
            if since_sequence is not None:
                backlog = self._backlog(since_sequence)
            subscription = Subscription(self, backlog, loop)
            self._subscribers.add(subscription)
            return subscription

    def close_subscriptions(self) -> None:
        """End every watch with StoreClosed, so shutdown is not held up by long-lived streams."""
        with self._lock:
            subscribers, self._subscribers = self._subscribers, set()
        for subscription in subscribers:
            subscription._push(Subscription._SHUTDOWN)

    def _backlog(self, since: int) -> list[Change]:
        """The retained changes after `since`; the caller holds the lock."""
        if since > self._sequence:
            raise CannotResume(
                f"since_sequence {since} is ahead of this store's latest change {self._sequence} "
                "(another instance, or this one restarted); list the users again and watch without since_sequence"
            )
        oldest = self._log[0].sequence if self._log else self._sequence + 1
        if since + 1 < oldest:
            raise CannotResume(
                f"since_sequence {since} is too old: the oldest retained change is {oldest}; "
                "list the users again and watch without since_sequence"
            )
        return [c for c in self._log if c.sequence > since]

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    def _get(self, user_id: str) -> UserRecord:
        try:
            return self._users[user_id]
        except KeyError:
            raise UserNotFound(user_id) from None

    def _check_email_free(self, email: str, allow_owner: str | None = None) -> None:
        for user in self._users.values():
            if user.email.lower() == email.lower() and user.id != allow_owner:
                raise DuplicateEmail(email, user.id)

    def _record(self, kind: str, user: UserRecord) -> None:
        """Append a change and push it to subscribers; the caller holds the lock."""
        self._sequence += 1
        change = Change(self._sequence, kind, user)
        self._log.append(change)
        for subscription in self._subscribers:
            subscription._push(change)
