"""Familiar ports every time: TIME_WAIT leftovers do not move a server, a real listener does, and status says so."""

from __future__ import annotations

import random
import socket

import psutil
import pytest
from labs import local_lab

from lab_services import cli
from lab_services.core.ports import PORT_OFFSET_ENV, PORT_RANGE_ENV, PortAllocator, is_free
from lab_services.discovery import ConsulWatcher, PickerChannel
from lab_services.service import user_pb2, user_pb2_grpc

FAMILIAR = (2379, 5001, 8500, 8600, 9090)


def _time_wait_port() -> int:
    """A port with no listener whose last connection lingers in TIME_WAIT (the server side closed first).

    The listener sets SO_REUSEADDR as Consul, etcd, Prometheus and gRPC do; its TIME_WAIT leftovers keep it.
    """
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        served, _ = listener.accept()
        served.close()
        client.recv(1)
        client.close()
    return port


def test_a_port_in_time_wait_is_free():
    port = _time_wait_port()
    assert any(c.laddr.port == port and c.status == "TIME_WAIT" for c in psutil.net_connections("tcp"))
    assert is_free("127.0.0.1", port)


def test_a_listening_port_moves_and_the_allocator_says_who_holds_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        preferred = taken.getsockname()[1]
        ports = PortAllocator(offset=0)
        port = ports.free(preferred)
        assert port != preferred and not is_free("127.0.0.1", preferred)
        assert ports.moved[port]["preferred"] == preferred
        assert str(ports.moved[port]["held_by"]).startswith("pid ")


def test_a_bad_offset_is_refused_with_the_variable_named(monkeypatch):
    monkeypatch.setenv(PORT_OFFSET_ENV, "lots")
    with pytest.raises(ValueError, match=rf"invalid argument: {PORT_OFFSET_ENV}: 'lots'"):
        PortAllocator()


def test_ports_without_a_familiar_number_come_from_the_labs_own_range(monkeypatch):
    monkeypatch.setenv(PORT_RANGE_ENV, "27100-27300")
    ports = PortAllocator()
    taken = [ports.free() for _ in range(50)]
    assert all(27100 <= p <= 27300 for p in taken) and len(set(taken)) == 50, taken


@pytest.mark.parametrize("text", ["lots", "30000-20000", "500-2000", "20000-40000", "20000"])
def test_a_bad_port_range_is_refused_with_the_variable_named(monkeypatch, text):
    monkeypatch.setenv(PORT_RANGE_ENV, text)
    with pytest.raises(ValueError, match=rf"invalid argument: {PORT_RANGE_ENV}: '{text}'; use LOW-HIGH"):
        PortAllocator()


@pytest.fixture
def own_familiar_ports(monkeypatch) -> int:
    """An offset whose shifted familiar ports nobody listens on, so other labs on this machine cannot interfere."""
    # Not a whole thousand: parallel test workers own those blocks (conftest._worker_port_block).
    for offset in random.sample([o for o in range(3100, 9900, 100) if o % 1000], 50):
        if all(is_free("127.0.0.1", p + offset) for p in (*FAMILIAR, 5002)):
            monkeypatch.setenv(PORT_OFFSET_ENV, str(offset))
            return offset
    pytest.fail("no block of familiar ports is free on this machine")


def test_up_traffic_down_up_keeps_the_familiar_ports(tmp_path, own_familiar_ports):
    offset = own_familiar_ports
    shape = dict(consul_servers=1, etcd_members=1, services=2, registry="consul", prometheus=True)
    with local_lab(tmp_path / "first", **shape) as lab:
        status = lab.status()
        assert status.consul.http == [f"127.0.0.1:{8500 + offset}"] and status.moved_ports == []
        watcher = ConsulWatcher("user", status.consul.http, wait="5s").start()
        try:
            assert watcher.wait_for(lambda xs: len(xs) == 2, 15)
            with PickerChannel(watcher, "round_robin") as channel:
                stub = user_pb2_grpc.UserServiceStub(channel)
                served = {
                    stub.CreateUser(
                        user_pb2.CreateUserRequest(name=f"u{i}", email=f"u{i}@lab.test"), timeout=5
                    ).served_by
                    for i in range(20)
                }
            assert served == {"user-1", "user-2"}
        finally:
            watcher.stop()
    with local_lab(tmp_path / "second", **shape) as lab:
        status = lab.status()
        assert status.consul.http == [f"127.0.0.1:{8500 + offset}"]
        assert status.consul.dns == f"127.0.0.1:{8600 + offset}"
        assert status.etcd.endpoints == [f"127.0.0.1:{2379 + offset}"]
        assert status.prometheus.url == f"http://127.0.0.1:{9090 + offset}"
        assert [s.address for s in status.services] == [f"127.0.0.1:{5001 + offset}", f"127.0.0.1:{5002 + offset}"]
        assert status.moved_ports == []


def test_status_says_when_consul_moved(tmp_path, own_familiar_ports, capsys):
    with socket.socket() as taken:
        # own_familiar_ports counts a port in TIME_WAIT (another lab's last connections) as free, as the servers do.
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 8500 + own_familiar_ports))
        taken.listen()
        with local_lab(
            tmp_path, consul_servers=1, etcd_members=0, services=0, prometheus=False, registry="none"
        ) as lab:
            status = lab.status()
            [moved] = status.moved_ports
            assert moved.process == "consul-1" and moved.port_name == "http"
            assert moved.preferred == 8500 + own_familiar_ports and moved.held_by.startswith("pid ")
            assert status.consul.http == [f"127.0.0.1:{moved.port}"]
            cli._print_status(status)
    preferred = 8500 + own_familiar_ports
    assert (
        f"consul-1 http is on {moved.port}, not {preferred}: {preferred} was in use by pid " in capsys.readouterr().out
    )
