"""A server's own gRPC channel arguments (lesson 11's ping policy) from the command line to the real server."""

from __future__ import annotations

import pytest

from lab_services.service import UserServer
from lab_services.service.main import parse_args


def test_server_options_are_parsed_as_integer_grpc_arguments():
    args = parse_args(["--server-option", "grpc.http2.min_ping_interval_without_data_ms=250"])
    assert args.server_option == [("grpc.http2.min_ping_interval_without_data_ms", 250)]


@pytest.mark.parametrize("bad", ["min_ping=250", "grpc.keepalive_time_ms", "grpc.keepalive_time_ms=soon"])
def test_a_bad_server_option_is_refused_saying_the_form(bad, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--server-option", bad])
    assert "expected grpc.<name>=<integer>" in capsys.readouterr().err


def test_the_server_is_built_with_them():
    server = UserServer(server_options=[("grpc.keepalive_permit_without_calls", 1)])
    assert ("grpc.keepalive_permit_without_calls", 1) in server._options()
    with pytest.raises(ValueError, match="server_options"):
        UserServer(server_options=[("keepalive", 1)])
