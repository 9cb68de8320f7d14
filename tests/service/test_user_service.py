"""The user service on real loopback ports: all four call modes, errors, watch resume, health, faults, metrics, CLI."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from lab_services.core.paths import REPO_DIR
from lab_services.core.ports import PortInUseError
from lab_services.service import SERVED_BY_HEADER, SERVICE_NAME, AdminClient, UserServer, user_pb2, user_pb2_grpc
from lab_services.service.store import UserStore

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["aio", "threads"])
def server(request) -> Iterator[UserServer]:
    """Both server kinds: the asyncio default and the thread pool lesson 05 keeps for comparison behave alike."""
    server = UserServer(instance_id="user-test", server_kind=request.param).start()
    yield server
    server.stop(0)


@pytest.fixture
def channel(server: UserServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as channel:
        yield channel


@pytest.fixture
def stub(channel: grpc.Channel) -> user_pb2_grpc.UserServiceStub:
    return user_pb2_grpc.UserServiceStub(channel)


@pytest.fixture
def admin(server: UserServer) -> AdminClient:
    return AdminClient(server.http_address)


def create(stub, name: str = "Ada", email: str = "ada@example.org") -> user_pb2.User:
    return stub.CreateUser(user_pb2.CreateUserRequest(name=name, email=email), timeout=5)


def rpc_error(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=5, **kwargs)
    return info.value


# Unary calls and errors


def test_create_and_get_say_which_instance_served(stub):
    created, call = stub.CreateUser.with_call(
        user_pb2.CreateUserRequest(name="Ada", email="ada@example.org"), timeout=5
    )
    assert (created.id, created.name, created.email, created.served_by) == (
        "u-1",
        "Ada",
        "ada@example.org",
        "user-test",
    )
    assert created.created_at.seconds > 0
    assert (SERVED_BY_HEADER, "user-test") in call.initial_metadata()
    assert stub.GetUser(user_pb2.GetUserRequest(id="u-1"), timeout=5) == created


def test_a_retried_create_with_the_same_request_id_writes_once(stub, admin):
    # What a retry after a lost reply sends: the very same request. Without a key the store cannot tell it from a
    # new write (here the unique email turns it into ALREADY_EXISTS for the caller's own success); with one, the
    # retry gets the first attempt's user and nothing is written twice.
    plain = user_pb2.CreateUserRequest(name="Ada", email="ada@example.org")
    stub.CreateUser(plain, timeout=5)
    assert rpc_error(stub.CreateUser, plain).code() == grpc.StatusCode.ALREADY_EXISTS
    keyed = user_pb2.CreateUserRequest(name="Grace", email="grace@example.org", request_id="req-1")
    first, retry = stub.CreateUser(keyed, timeout=5), stub.CreateUser(keyed, timeout=5)
    assert retry.id == first.id and retry.created_at == first.created_at
    assert admin.state()["users"] == 2 and admin.state()["sequence"] == 2, admin.state()
    other = stub.CreateUser(
        user_pb2.CreateUserRequest(name="Edsger", email="edsger@example.org", request_id="req-2"), timeout=5
    )
    assert other.id != first.id
    too_long = rpc_error(
        stub.CreateUser, user_pb2.CreateUserRequest(name="X", email="x@example.org", request_id="r" * 129)
    )
    assert too_long.code() == grpc.StatusCode.INVALID_ARGUMENT and too_long.details().startswith(
        "request_id: is 129 characters long"
    )


def test_admin_reset_clears_faults_health_users_and_request_ids(stub, admin):
    keyed = user_pb2.CreateUserRequest(name="Ada", email="ada@example.org", request_id="req-1")
    first = stub.CreateUser(keyed, timeout=5)
    admin.set_faults(latency_ms=5)
    admin.set_health("NOT_SERVING")
    undone = admin.reset()
    assert undone["users_removed"] == 1 and undone["faults"] == {"latency_ms": 0.0, "error_rate": 0.0}
    assert set(undone["health"].values()) == {"SERVING"}
    assert stub.CreateUser(keyed, timeout=5).id != first.id, "a forgotten request id is a new write after a reset"


def test_update_and_delete(stub):
    user = create(stub)
    updated = stub.UpdateUser(user_pb2.UpdateUserRequest(id=user.id, name="Ada L", email="ada@lovelace.org"), timeout=5)
    assert (updated.name, updated.email, updated.created_at) == ("Ada L", "ada@lovelace.org", user.created_at)
    assert stub.DeleteUser(user_pb2.DeleteUserRequest(id=user.id), timeout=5).id == user.id
    assert rpc_error(stub.GetUser, user_pb2.GetUserRequest(id=user.id)).code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("name", "email", "code", "details"),
    [
        ("", "a@example.org", grpc.StatusCode.INVALID_ARGUMENT, "name: must not be empty"),
        ("Ada", "x", grpc.StatusCode.INVALID_ARGUMENT, "email: 'x' is not a valid address"),
        (
            "Bob",
            "ADA@example.org",
            grpc.StatusCode.ALREADY_EXISTS,
            "email: 'ADA@example.org' is already used by user 'u-1'",
        ),
    ],
)
def test_create_errors_name_the_field(stub, name, email, code, details):
    create(stub)
    error = rpc_error(stub.CreateUser, user_pb2.CreateUserRequest(name=name, email=email))
    assert (error.code(), error.details()) == (code, details)
    assert (SERVED_BY_HEADER, "user-test") in error.trailing_metadata()


@pytest.mark.parametrize(
    ("name", "email", "details"),
    [
        ("x" * 201, "a@example.org", "name: must be at most 200 characters, got 201"),
        ("x" * 100_000, "a@example.org", "name: must be at most 200 characters, got 100000"),
        ("Ada", "a" * 243 + "@example.org", "email: must be at most 254 characters, got 255"),
    ],
)
def test_over_long_fields_are_refused_with_the_limit(stub, name, email, details):
    error = rpc_error(stub.CreateUser, user_pb2.CreateUserRequest(name=name, email=email))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, details)
    user = create(stub)
    error = rpc_error(stub.UpdateUser, user_pb2.UpdateUserRequest(id=user.id, name=name, email=email))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, details)
    assert stub.GetUser(user_pb2.GetUserRequest(id=user.id), timeout=5).name == "Ada"


def test_fields_at_the_limit_are_accepted(stub):
    user = create(stub, name="n" * 200, email="a" * 242 + "@example.org")
    assert (len(user.name), len(user.email)) == (200, 254)


def test_unknown_id_is_not_found(stub):
    error = rpc_error(stub.GetUser, user_pb2.GetUserRequest(id="u-42"))
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "user 'u-42' not found")


# Streaming calls


def test_list_users_streams_in_order_with_limit(stub):
    for i in range(5):
        create(stub, f"user{i}", f"user{i}@example.org")
    assert [u.name for u in stub.ListUsers(user_pb2.ListUsersRequest(), timeout=5)] == [f"user{i}" for i in range(5)]
    assert [u.id for u in stub.ListUsers(user_pb2.ListUsersRequest(limit=2), timeout=5)] == ["u-1", "u-2"]


def test_list_users_deadline_mid_stream(stub):
    for i in range(5):
        create(stub, f"user{i}", f"user{i}@example.org")
    received = []
    with pytest.raises(grpc.RpcError) as info:
        for user in stub.ListUsers(user_pb2.ListUsersRequest(interval_ms=200), timeout=0.5):
            received.append(user.id)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert 1 <= len(received) < 5


def test_import_users_keeps_good_records_and_reports_bad_ones(stub):
    records = [
        user_pb2.CreateUserRequest(name="Ada", email="ada@example.org"),
        user_pb2.CreateUserRequest(name="", email="nobody@example.org"),
        user_pb2.CreateUserRequest(name="Grace", email="grace@example.org"),
        user_pb2.CreateUserRequest(name="Ada again", email="ada@example.org"),
        user_pb2.CreateUserRequest(name="Bad", email="not-an-email"),
    ]
    summary = stub.ImportUsers(iter(records), timeout=5)
    assert summary.imported == 2
    assert [(r.index, r.reason) for r in summary.rejected] == [
        (1, "name: must not be empty"),
        (3, "email: 'ada@example.org' is already used by user 'u-1'"),
        (4, "email: 'not-an-email' is not a valid address"),
    ]
    assert summary.served_by == "user-test"
    assert [u.name for u in stub.ListUsers(user_pb2.ListUsersRequest(), timeout=5)] == ["Ada", "Grace"]


def test_chat_replies_interleave_with_requests(stub):
    outbox: queue.Queue = queue.Queue()
    replies = stub.Chat(iter(outbox.get, None), timeout=5)
    seen = []
    for text in ("hello", "are you there?", "bye"):
        outbox.put(user_pb2.ChatMessage(sender="learner", text=text))
        # The reply arrives while the request stream is still open: the directions interleave.
        reply = next(replies)
        seen.append(reply.text)
        assert (reply.sender, reply.served_by) == ("user-test", "user-test")
    outbox.put(None)
    assert list(replies) == []
    assert seen == ["#1 learner said: hello", "#2 learner said: are you there?", "#3 learner said: bye"]


class Watcher:
    """Collects WatchUsers events on a background thread."""

    def __init__(self, stub, **request):
        self.call = stub.WatchUsers(user_pb2.WatchUsersRequest(**request), timeout=20)
        self.events: queue.Queue = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for event in self.call:
                self.events.put(event)
        except grpc.RpcError as error:
            self.error = error

    def take(self, n: int) -> list:
        return [self.events.get(timeout=5) for _ in range(n)]

    def cancel(self):
        self.call.cancel()
        self.thread.join(5)


def test_watch_pushes_changes_and_resumes_without_gap_or_duplicate(stub):
    watcher = Watcher(stub)
    time.sleep(0.2)  # let the subscription open: without since_sequence it sees only later changes
    ada = create(stub)
    stub.DeleteUser(user_pb2.DeleteUserRequest(id=ada.id), timeout=5)
    first = watcher.take(2)
    assert [(e.sequence, user_pb2.UserEvent.Kind.Name(e.kind), e.user.id) for e in first] == [
        (1, "CREATED", "u-1"),
        (2, "DELETED", "u-1"),
    ]
    assert first[0].served_by == "user-test"
    watcher.cancel()

    for i in range(3):  # changes made while the client was away
        create(stub, f"user{i}", f"user{i}@example.org")
    resumed = Watcher(stub, since_sequence=first[-1].sequence)
    create(stub, "live", "live@example.org")
    events = resumed.take(4)
    assert [e.sequence for e in events] == [3, 4, 5, 6]
    assert [e.user.name for e in events] == ["user0", "user1", "user2", "live"]
    time.sleep(0.2)
    assert resumed.events.empty()
    resumed.cancel()


def test_watch_from_a_forgotten_sequence_is_out_of_range():
    server = UserServer(instance_id="small", store=UserStore(history=2)).start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = user_pb2_grpc.UserServiceStub(channel)
            for i in range(4):
                create(stub, f"user{i}", f"user{i}@example.org")
            error = rpc_error(lambda **kw: list(stub.WatchUsers(user_pb2.WatchUsersRequest(since_sequence=1), **kw)))
            assert error.code() == grpc.StatusCode.OUT_OF_RANGE
            assert "oldest retained change is 3" in error.details()
            error = rpc_error(lambda **kw: list(stub.WatchUsers(user_pb2.WatchUsersRequest(since_sequence=9), **kw)))
            assert error.code() == grpc.StatusCode.OUT_OF_RANGE
    finally:
        server.stop(0)


def test_stop_ends_watch_streams_promptly_with_resume_point(stub, server):
    create(stub)
    watcher = Watcher(stub, since_sequence=0)
    assert watcher.take(1)[0].sequence == 1
    started = time.monotonic()
    server.stop(grace=10)
    assert time.monotonic() - started < 3
    watcher.thread.join(5)
    assert watcher.error is not None and watcher.error.code() == grpc.StatusCode.UNAVAILABLE
    assert "reconnect with since_sequence=1" in watcher.error.details()


# Health, reflection, admin port, faults, metrics


def post(server: UserServer, path: str, data: bytes) -> tuple[int, dict]:
    """POST raw bytes to the side HTTP port; return the status and the JSON reply, errors included."""
    request = urllib.request.Request(f"http://{server.http_address}{path}", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_health_flip_through_admin_is_seen_by_grpc_health_and_http(channel, admin):
    health = health_pb2_grpc.HealthStub(channel)

    def status(service: str) -> str:
        response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    assert status("") == status(SERVICE_NAME) == "SERVING"
    assert admin.health() == "SERVING"
    assert admin.set_health("NOT_SERVING", service=SERVICE_NAME)[SERVICE_NAME] == "NOT_SERVING"
    assert (status(""), status(SERVICE_NAME)) == ("SERVING", "NOT_SERVING")
    assert admin.health(SERVICE_NAME) == "NOT_SERVING"
    admin.set_health("NOT_SERVING")
    assert status("") == "NOT_SERVING"
    assert admin.health() == "NOT_SERVING"
    assert admin.state()["health"] == {"": "NOT_SERVING", SERVICE_NAME: "NOT_SERVING"}


def test_health_endpoint_status_codes(server, admin):
    with urllib.request.urlopen(f"http://{server.http_address}/health", timeout=5) as response:
        assert (response.status, response.read()) == (200, b"SERVING\n")
    admin.set_health("NOT_SERVING")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"http://{server.http_address}/health", timeout=5)
    assert info.value.code == 503
    info.value.close()


def test_reflection_lists_the_services(channel):
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert SERVICE_NAME in services and "grpc.health.v1.Health" in services


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"status": "MAYBE"}, "status: must be one of SERVING, NOT_SERVING, got 'MAYBE'"),
        ({"status": "SERVING", "service": "nope"}, "service: must be one of"),
        ({"service": ""}, "status: required"),
        ({"status": "SERVING", "colour": "red"}, "colour: unknown field"),
    ],
)
def test_admin_health_rejects_bad_requests(server, body, message):
    status, reply = post(server, "/admin/health", json.dumps(body).encode())
    assert status == 400 and reply["error"].startswith(message)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latency_ms": -1}, "latency_ms: must be >= 0"),
        ({"error_rate": 1.5}, "error_rate: must be between 0 and 1"),
        ({"error_rate": "lots"}, "error_rate: must be a finite number"),
        ({"latency_ms": True}, "latency_ms: must be a finite number"),
    ],
)
def test_admin_faults_rejects_bad_values(admin, kwargs, message):
    with pytest.raises(ValueError, match=message):
        admin.set_faults(**kwargs)
    assert admin.state()["faults"] == {"latency_ms": 0.0, "error_rate": 0.0}


def test_admin_rejects_invalid_json(server):
    status, reply = post(server, "/admin/faults", b"{oops")
    assert status == 400 and reply["error"].startswith("body: not valid JSON")
    status, reply = post(server, "/admin/faults", b"[1, 2]")
    assert status == 400 and reply["error"] == "body: must be a JSON object, got [1, 2]"


def test_error_rate_one_fails_user_calls_but_not_health(stub, channel, admin):
    assert admin.set_faults(error_rate=1.0) == {"latency_ms": 0.0, "error_rate": 1.0}
    error = rpc_error(stub.GetUser, user_pb2.GetUserRequest(id="u-1"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "injected fault" in error.details()
    assert (SERVED_BY_HEADER, "user-test") in error.trailing_metadata()
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    admin.set_faults(error_rate=0)
    create(stub)


def test_latency_is_added_to_each_call(stub, admin):
    create(stub)
    admin.set_faults(latency_ms=300)
    started = time.monotonic()
    stub.GetUser(user_pb2.GetUserRequest(id="u-1"), timeout=5)
    assert time.monotonic() - started >= 0.3
    admin.set_faults(latency_ms=0)
    started = time.monotonic()
    stub.GetUser(user_pb2.GetUserRequest(id="u-1"), timeout=5)
    assert time.monotonic() - started < 0.2


def test_metrics_count_calls_by_method_and_code(stub, admin):
    create(stub)
    rpc_error(stub.GetUser, user_pb2.GetUserRequest(id="u-9"))
    list(stub.ListUsers(user_pb2.ListUsersRequest(), timeout=5))
    text = admin.metrics()
    service = f'grpc_service="{SERVICE_NAME}"'
    assert f'grpc_server_handled_total{{grpc_code="OK",grpc_method="CreateUser",{service}}} 1.0' in text
    assert f'grpc_server_handled_total{{grpc_code="NOT_FOUND",grpc_method="GetUser",{service}}} 1.0' in text
    assert f'grpc_server_handled_total{{grpc_code="OK",grpc_method="ListUsers",{service}}} 1.0' in text
    assert f'grpc_server_handling_seconds_count{{grpc_method="CreateUser",{service}}} 1.0' in text
    assert f'grpc_server_in_flight{{grpc_method="CreateUser",{service}}} 0.0' in text


# The process: python -m lab_services.service


def start_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lab_services.service", *args],
        cwd=REPO_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_process_prints_ready_then_drains_on_sigterm():
    process = start_process("--port", "0", "--http-port", "0", "--id", "user-proc", "--grace", "5")
    try:
        line = process.stdout.readline()
        assert line.startswith("READY "), process.stderr.read()
        ready = json.loads(line.removeprefix("READY "))
        assert ready["id"] == "user-proc" and ready["name"] == "user" and ready["pid"] == process.pid
        assert ready["address"].startswith("127.0.0.1:") and ready["http"].startswith("127.0.0.1:")
        AdminClient(ready["http"]).set_faults(latency_ms=800)

        with grpc.insecure_channel(ready["address"]) as channel:
            stub = user_pb2_grpc.UserServiceStub(channel)
            statuses = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=10
            )
            assert next(statuses).status == health_pb2.HealthCheckResponse.SERVING
            slow = stub.CreateUser.future(user_pb2.CreateUserRequest(name="Slow", email="slow@example.org"), timeout=10)
            time.sleep(0.3)  # the call is now in flight, inside the injected latency
            process.send_signal(signal.SIGTERM)
            assert next(statuses).status == health_pb2.HealthCheckResponse.NOT_SERVING
            statuses.cancel()
            assert slow.result().name == "Slow"  # the in-flight call drained
        assert process.wait(10) == 0
        log = process.stderr.read()
        assert "reporting NOT_SERVING" in log and "draining" in log
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()


def test_sigterm_the_moment_it_is_ready_still_shuts_down_in_order():
    # The moment after READY is when the main thread starts waiting for a stop signal: a handler setting an Event
    # there could deadlock (core.stop_signals). A few SIGTERMs at and just after that moment each end it cleanly.
    for delay in (0.0, 0.001, 0.01, 0.05):
        process = start_process("--port", "0", "--http-port", "0", "--grace", "1")
        try:
            assert process.stdout.readline().startswith("READY "), process.stderr.read()
            time.sleep(delay)
            process.send_signal(signal.SIGTERM)
            assert process.wait(10) == 0, f"SIGTERM {delay} s after READY"
            assert "received SIGTERM" in process.stderr.read()
        finally:
            process.kill()
            process.wait()
            process.stdout.close()
            process.stderr.close()


def test_port_in_use_exits_2_with_message():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start_process("--port", str(port))
        out, err = process.communicate(timeout=20)
    assert process.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in err and "--port 0" in err
    assert "Traceback" not in err and out == ""


def test_non_loopback_host_is_refused():
    process = start_process("--host", "0.0.0.0")
    _, err = process.communicate(timeout=20)
    assert process.returncode == 2
    assert "'0.0.0.0' is not a lab address" in err and "Traceback" not in err


def test_second_server_on_a_taken_port_fails_instead_of_sharing_it(server):
    # Without grpc.so_reuseport=0 the second server would bind too and steal half the calls.
    with pytest.raises(PortInUseError, match=f"port {server.port} on 127.0.0.1 is in use"):
        UserServer(port=server.port).start()
    with pytest.raises(PortInUseError, match=f"port {server.http_port} on 127.0.0.1 is in use.*--http-port 0"):
        UserServer(http_port=server.http_port).start()


def test_max_connection_age_closes_connections_so_clients_reconnect():
    """The server sends GOAWAY after the age; the channel goes IDLE and would re-resolve on the next call."""
    import threading

    server = UserServer(name="aging", max_connection_age_ms=300).start()
    seen_idle = threading.Event()
    try:
        with grpc.insecure_channel(server.address) as channel:
            user_pb2_grpc.UserServiceStub(channel).ListUsers(user_pb2.ListUsersRequest(), timeout=5)
            channel.subscribe(lambda state: state == grpc.ChannelConnectivity.IDLE and seen_idle.set())
            assert seen_idle.wait(10), "the connection was never closed by the server"
            user_pb2_grpc.UserServiceStub(channel).CreateUser(
                user_pb2.CreateUserRequest(name="Ada", email="age@example.org"), timeout=5
            )
    finally:
        server.stop(grace=0)
