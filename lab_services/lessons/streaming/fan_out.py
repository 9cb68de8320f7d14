"""FanOutWriter: every change goes to every live instance, in the same order, so their sequence numbers agree.

Each user service instance keeps its own store with its own sequence numbers, and instances do not replicate.
Writing every CreateUser to every instance, one after another under one lock, keeps instances that started
together in step, so a watch can resume on any of them.
"""

from __future__ import annotations

import itertools
import threading
import time

import grpc

from lab_services._proto.lab.user.v1 import user_service_pb2 as pb
from lab_services._proto.lab.user.v1 import user_service_pb2_grpc as pb_grpc
from lab_services.core.instance import ServiceInstance
from lab_services.discovery.watcher import Watcher
from lab_services.lessons.streaming.resume import ChannelFactory


class FanOutWriter:
    """Creates users on every instance the watcher lists, one change at a time, so their sequences agree.

    `sequence` is the highest sequence the instances answered; `skipped` counts writes an instance
    missed because it was down (it can no longer resume watches and is avoided by ResumableWatch).
    """

    def __init__(self, watcher: Watcher, channel_factory: ChannelFactory = grpc.insecure_channel, timeout: float = 2.0):
        self.watcher = watcher
        self.channel_factory = channel_factory
        self.timeout = timeout
        self.sequence = 0
        self.written = 0
        self.skipped: dict[str, int] = {}
        self._channels: dict[str, tuple[str, grpc.Channel]] = {}
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._tag = f"{time.time_ns():x}"

    def create(self) -> int:
        """Create one user on every listed instance; returns how many instances took it."""
        n = next(self._numbers)
        request = pb.CreateUserRequest(name=f"fan-out {n}", email=f"fanout{n}.{self._tag}@example.org")
        took = 0
        with self._lock:
            for instance in self.watcher.instances():
                stub = pb_grpc.UserServiceStub(self._channel(instance))
                try:
                    stub.CreateUser(request, timeout=self.timeout, wait_for_ready=False)
                except grpc.RpcError:
                    self.skipped[instance.id] = self.skipped.get(instance.id, 0) + 1
                    continue
                took += 1
            if took:
                self.written += 1
                # Sequence numbers are counted per store; every instance that took all writes is at `written`
                # changes beyond where they all started.
                self.sequence += 1
        return took

    def create_many(self, count: int, interval: float = 0.0) -> int:
        """Create `count` users, pausing `interval` seconds between them; returns how many were written."""
        for i in range(count):
            if i and interval:
                time.sleep(interval)
            self.create()
        return self.written

    def start_sequence(self) -> int:
        """The sequence every listed instance has now (they must agree); ValueError naming them if not."""
        sequences = {}
        with self._lock:
            for instance in self.watcher.instances():
                stub = pb_grpc.UserServiceStub(self._channel(instance))
                call = stub.WatchUsers(pb.WatchUsersRequest(since_sequence=0), timeout=0.3)
                last = 0
                try:
                    for event in call:
                        last = event.sequence
                except grpc.RpcError as err:
                    if err.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                        raise
                sequences[instance.id] = last
        if len(set(sequences.values())) > 1:
            raise ValueError(
                f"the instances disagree on their latest sequence: {sequences}; "
                "a fan-out writer needs instances that started together (empty) and took the same changes"
            )
        self.sequence = next(iter(sequences.values()), 0)
        return self.sequence

    def close(self) -> None:
        with self._lock:
            for _, channel in self._channels.values():
                channel.close()
            self._channels.clear()

    def _channel(self, instance: ServiceInstance) -> grpc.Channel:
        address, channel = self._channels.get(instance.id, (None, None))
        if channel is None or address != instance.address:
            if channel is not None:
                channel.close()
            channel = self.channel_factory(instance.address)
            self._channels[instance.id] = (instance.address, channel)
        return channel


# Flow control on a bidi stream
