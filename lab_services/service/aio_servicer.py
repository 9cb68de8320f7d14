"""The user service for the grpc.aio server: the calls, errors and messages of servicer.py, awaiting, not blocking.

An open WatchUsers or Chat stream here is a suspended coroutine, not a thread, so a thousand of them
leave the server free to answer health checks and unary calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from grpc import aio

from lab_services._proto.lab.user.v1 import user_service_pb2 as pb
from lab_services.service.servicer import UserServicer, status_of
from lab_services.service.store import StoreClosed, StoreError


class AsyncUserServicer(UserServicer):
    """UserServicer's behaviour on an event loop; the store's short, locked operations run inline."""

    async def CreateUser(self, request: pb.CreateUserRequest, context: aio.ServicerContext) -> pb.User:
        return await self._acall(
            context, lambda: self._user(self.store.create(request.name, request.email, request.request_id))
        )

    async def GetUser(self, request: pb.GetUserRequest, context: aio.ServicerContext) -> pb.User:
        return await self._acall(context, lambda: self._user(self.store.get(request.id)))

    async def UpdateUser(self, request: pb.UpdateUserRequest, context: aio.ServicerContext) -> pb.User:
        return await self._acall(
            context, lambda: self._user(self.store.update(request.id, request.name, request.email))
        )

    async def DeleteUser(self, request: pb.DeleteUserRequest, context: aio.ServicerContext) -> pb.User:
        return await self._acall(context, lambda: self._user(self.store.delete(request.id)))

    async def ListUsers(self, request: pb.ListUsersRequest, context: aio.ServicerContext) -> AsyncIterator[pb.User]:
        users = self.store.list()
        if request.limit:
            users = users[: request.limit]
        # A cancel or deadline cancels this coroutine, so a paused stream stops at once.
        for i, user in enumerate(users):
            if i and request.interval_ms:
                await asyncio.sleep(request.interval_ms / 1000)
            yield self._user(user)

    async def WatchUsers(
        self, request: pb.WatchUsersRequest, context: aio.ServicerContext
    ) -> AsyncIterator[pb.UserEvent]:
        since = request.since_sequence if request.HasField("since_sequence") else None
        loop = asyncio.get_running_loop()
        subscription = await self._acall(context, lambda: self.store.subscribe(since, loop=loop))
        try:
            async for change in subscription:
                yield self._event(change)
        except StoreClosed:
            await context.abort(grpc.StatusCode.UNAVAILABLE, self._shutting_down())
        finally:
            subscription.close()

    async def ImportUsers(
        self, request_iterator: AsyncIterator[pb.CreateUserRequest], context: aio.ServicerContext
    ) -> pb.ImportSummary:
        summary = pb.ImportSummary(served_by=self.instance_id)
        index = 0
        async for request in request_iterator:
            self._import_one(summary, index, request)
            index += 1
        return summary

    async def Chat(
        self, request_iterator: AsyncIterator[pb.ChatMessage], context: aio.ServicerContext
    ) -> AsyncIterator[pb.ChatMessage]:
        # Each reply is sent before the next message is read, so the two directions interleave.
        count = 0
        async for message in request_iterator:
            count += 1
            yield self._reply(count, message)

    async def _acall(self, context: aio.ServicerContext, action):
        """Run action unless the caller has gone (cancelled, or out of time after an injected delay): work nobody
        waits for is skipped, as in servicer.py. A StoreError becomes its status code."""
        remaining = context.time_remaining()
        if context.cancelled() or (remaining is not None and remaining <= 0):
            await context.abort(grpc.StatusCode.CANCELLED, "the caller gave up before the work started; skipped")
        try:
            return action()
        except StoreError as exc:
            await context.abort(*status_of(exc))
