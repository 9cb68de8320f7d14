"""gRPC core's `grpc.max_connection_age_ms` is jittered both ways (lesson 11 §2): each connection's age is the setting
times a random factor between 0.9 and 1.1, so some connections are closed before the nominal age, not only after."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2_grpc

AGE_MS, CONNECTIONS = 1000, 16


def test_some_connections_are_closed_before_their_nominal_age():
    server = grpc.server(
        ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_connection_age_ms", AGE_MS), ("grpc.max_connection_age_grace_ms", 60_000)],
    )
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    closed: dict[int, float] = {}
    done = threading.Event()
    channels = []
    try:
        for index in range(CONNECTIONS):
            # A channel of its own subchannel pool: its own connection, not one shared with the others.
            channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
            asked, seen_ready = time.monotonic(), threading.Event()

            def watch(state, index=index, asked=asked, seen_ready=seen_ready):
                if state == grpc.ChannelConnectivity.READY:
                    seen_ready.set()
                elif seen_ready.is_set() and index not in closed:
                    # Measured from before the connection was asked for, so the server's own timer (started when it
                    # accepted) ran no longer than this: a figure under the nominal age is a shorter age, not noise.
                    closed[index] = time.monotonic() - asked
                    if len(closed) == CONNECTIONS:
                        done.set()

            channel.subscribe(watch, try_to_connect=True)
            channels.append(channel)
        assert done.wait(3 * AGE_MS / 1000 + 5), f"only {len(closed)} of {CONNECTIONS} connections were closed"
    finally:
        for channel in channels:
            channel.close()
        server.stop(None)
    ages = sorted(closed.values())
    assert ages[0] < 0.99 * AGE_MS / 1000, f"no connection was closed before its nominal age: {ages}"
    assert ages[-1] - ages[0] > 0.05 * AGE_MS / 1000, f"every connection got the same age: {ages}"
