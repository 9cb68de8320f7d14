"""The lab.user.v1.UserService implementation: the four call modes over a UserStore, with clear errors.

Store errors become status codes whose messages name the field or the id, because lesson 01 shows
them to learners as the example of a good gRPC error.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from lab_services._proto.lab.user.v1 import user_service_pb2 as pb
from lab_services._proto.lab.user.v1 import user_service_pb2_grpc as pb_grpc
from lab_services.service.store import (
    CannotResume,
    Change,
    DuplicateEmail,
    InvalidUser,
    StoreClosed,
    StoreError,
    UserNotFound,
    UserRecord,
    UserStore,
)

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["UserService"].full_name

_CODES: dict[type[StoreError], grpc.StatusCode] = {
    InvalidUser: grpc.StatusCode.INVALID_ARGUMENT,
    UserNotFound: grpc.StatusCode.NOT_FOUND,
    DuplicateEmail: grpc.StatusCode.ALREADY_EXISTS,
    CannotResume: grpc.StatusCode.OUT_OF_RANGE,
}


def status_of(error: StoreError) -> tuple[grpc.StatusCode, str]:
    """The status code and details a store error becomes."""
    return _CODES[type(error)], str(error)


class UserServicer(pb_grpc.UserServiceServicer):
    """Serves one UserStore and stamps every response with this instance's id (`served_by`)."""

    def __init__(self, store: UserStore, instance_id: str):
        self.store = store
        self.instance_id = instance_id

    def CreateUser(self, request: pb.CreateUserRequest, context: grpc.ServicerContext) -> pb.User:
        return self._call(
            context, lambda: self._user(self.store.create(request.name, request.email, request.request_id))
        )

    def GetUser(self, request: pb.GetUserRequest, context: grpc.ServicerContext) -> pb.User:
        return self._call(context, lambda: self._user(self.store.get(request.id)))

    def UpdateUser(self, request: pb.UpdateUserRequest, context: grpc.ServicerContext) -> pb.User:
        return self._call(context, lambda: self._user(self.store.update(request.id, request.name, request.email)))

    def DeleteUser(self, request: pb.DeleteUserRequest, context: grpc.ServicerContext) -> pb.User:
        return self._call(context, lambda: self._user(self.store.delete(request.id)))

    def ListUsers(self, request: pb.ListUsersRequest, context: grpc.ServicerContext) -> Iterator[pb.User]:
        users = self.store.list()
        if request.limit:
            users = users[: request.limit]
        # Set when the call ends (cancel, deadline), so a paused stream stops at once instead of sleeping on.
        ended = threading.Event()
        context.add_callback(ended.set)
        for i, user in enumerate(users):
            if i and request.interval_ms and ended.wait(request.interval_ms / 1000):
                return
            yield self._user(user)

    def WatchUsers(self, request: pb.WatchUsersRequest, context: grpc.ServicerContext) -> Iterator[pb.UserEvent]:
        since = request.since_sequence if request.HasField("since_sequence") else None
        subscription = self._call(context, lambda: self.store.subscribe(since))
        # The callback runs when the client cancels or the deadline passes, and ends the loop below.
        context.add_callback(subscription.close)
        try:
            for change in subscription:
                yield self._event(change)
        except StoreClosed:
            context.abort(grpc.StatusCode.UNAVAILABLE, self._shutting_down())
        finally:
            subscription.close()

    def ImportUsers(
        self, request_iterator: Iterator[pb.CreateUserRequest], context: grpc.ServicerContext
    ) -> pb.ImportSummary:
        summary = pb.ImportSummary(served_by=self.instance_id)
        for index, request in enumerate(request_iterator):
            self._import_one(summary, index, request)
        return summary

    def Chat(
        self, request_iterator: Iterator[pb.ChatMessage], context: grpc.ServicerContext
    ) -> Iterator[pb.ChatMessage]:
        # Each reply is sent before the next message is read, so the two directions interleave.
        for count, message in enumerate(request_iterator, start=1):
            yield self._reply(count, message)

    def _call(self, context: grpc.ServicerContext, action):
        """Run action unless the caller has gone (cancelled, or out of time after an injected delay): work nobody
        waits for is skipped, which is what deadline propagation buys. A StoreError becomes its status code."""
        if not context.is_active():
            context.abort(grpc.StatusCode.CANCELLED, "the caller gave up before the work started; skipped")
        try:
            return action()
        except StoreError as exc:
            context.abort(*status_of(exc))

    def _import_one(self, summary: pb.ImportSummary, index: int, request: pb.CreateUserRequest) -> None:
        try:
            self.store.create(request.name, request.email)
        except StoreError as exc:
            summary.rejected.add(index=index, reason=str(exc))
        else:
            summary.imported += 1

    def _reply(self, count: int, message: pb.ChatMessage) -> pb.ChatMessage:
        return pb.ChatMessage(
            sender=self.instance_id,
            text=f"#{count} {message.sender or 'anonymous'} said: {message.text}",
            served_by=self.instance_id,
        )

    def _shutting_down(self) -> str:
        return f"instance {self.instance_id} is shutting down; reconnect with since_sequence={self.store.sequence}"

    def _user(self, user: UserRecord) -> pb.User:
        created = Timestamp()
        created.FromNanoseconds(int(user.created_at * 1e9))
        return pb.User(id=user.id, name=user.name, email=user.email, created_at=created, served_by=self.instance_id)

    def _event(self, change: Change) -> pb.UserEvent:
        return pb.UserEvent(
            sequence=change.sequence,
            kind=pb.UserEvent.Kind.Value(change.kind),
            user=self._user(change.user),
            served_by=self.instance_id,
        )
