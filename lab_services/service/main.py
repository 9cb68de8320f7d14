"""`python -m lab_services.service`: run one user service instance, register it, drain on SIGTERM.

Startup: validate flags, start gRPC and the side HTTP port, report SERVING, register, then print one
line `READY {"id": ..., "name": ..., "address": ..., "http": ..., "pid": ...}` for the runtime.
Shutdown (SIGTERM or SIGINT): NOT_SERVING, deregister, let in-flight calls drain for --grace, exit 0.
Bad flags and ports in use exit 2 with a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab_services.core.instance import ServiceInstance
from lab_services.core.network import require_lab_host
from lab_services.core.ports import PortInUseError
from lab_services.core.stop_signals import block_stop_signals, wait_for_stop_signal
from lab_services.service.server import DEFAULT_MAX_STREAMS, SERVER_KINDS, UserServer

log = logging.getLogger("lab_services.service")

# How long a stopping instance keeps answering after it deregistered: blocking queries and watches deliver a
# change in milliseconds, so this covers the calls already on their way.
DISCOVERY_PROPAGATION_SECONDS = 0.3

CHECK_KINDS = ("grpc", "http", "tcp", "ttl")
REGISTRIES = ("none", "consul", "etcd", "both")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab_services.service", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address to bind, inside 127.0.0.0/8")
    p.add_argument("--port", type=int, default=0, help="gRPC port; 0 picks a free one")
    p.add_argument(
        "--http-port", type=int, default=0, help="side HTTP port (/health, /metrics, /admin); 0 picks a free one"
    )
    p.add_argument("--name", default="user", help="service name to register")
    p.add_argument("--id", help="instance id; default <name>-<port>")
    p.add_argument("--tags", default="", help="comma-separated tags, e.g. v1,canary")
    p.add_argument("--meta", action="append", default=[], metavar="K=V", help="service meta, repeatable")
    p.add_argument("--registry", choices=REGISTRIES, default="none", help="where to register")
    p.add_argument("--consul", default="127.0.0.1:8500", help="Consul HTTP address")
    p.add_argument("--etcd", default="127.0.0.1:2379", help="etcd endpoints, host:port,host:port")
    p.add_argument("--check", action="append", choices=CHECK_KINDS, help="Consul check kind, repeatable (default grpc)")
    p.add_argument("--check-interval", default="1s", help="Consul check interval")
    p.add_argument("--check-timeout", default="1s", help="Consul check timeout")
    p.add_argument("--ttl", default="3s", help="TTL of a ttl check")
    p.add_argument("--deregister-after", help="Consul DeregisterCriticalServiceAfter, e.g. 1m")
    p.add_argument("--lease-ttl", type=int, default=5, help="etcd lease TTL in seconds")
    p.add_argument("--grace", type=float, default=5.0, help="seconds to let in-flight calls finish on shutdown")
    p.add_argument("--tls-cert", help="serve gRPC over TLS with this PEM certificate (needs --tls-key)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--tls-ca", help="PEM CA whose client certificates are accepted (needs --mtls)")
    p.add_argument("--mtls", action="store_true", help="require client certificates signed by --tls-ca")
    p.add_argument(
        "--check-tls-verify",
        action="store_true",
        help="let Consul verify the certificate in its gRPC check (its agent must have the CA as ca_file)",
    )
    p.add_argument(
        "--max-connection-age-ms",
        type=int,
        default=None,
        help="close client connections after this long, so DNS clients re-resolve (lesson 03)",
    )
    p.add_argument(
        "--server-option",
        action="append",
        default=[],
        metavar="NAME=INT",
        help="a gRPC server channel argument, repeatable, e.g. grpc.http2.min_ping_interval_without_data_ms=400 "
        "(lesson 11: the ping policy a client's keepalive needs)",
    )
    p.add_argument(
        "--server",
        choices=SERVER_KINDS,
        default="aio",
        help="aio: one event loop serves every stream; threads: the old thread pool (lesson 05's failure)",
    )
    p.add_argument(
        "--max-streams",
        type=int,
        default=DEFAULT_MAX_STREAMS,
        help="open streams (aio) beyond which new ones get RESOURCE_EXHAUSTED",
    )
    p.add_argument(
        "--config-store",
        choices=("none", "consul", "etcd"),
        default="none",
        help="follow runtime settings in Consul KV (blocking query) or etcd (watch) and apply them live (lesson 10)",
    )
    p.add_argument("--config-address", help="the config store's address; default --consul or --etcd")
    p.add_argument("--config-prefix", help="where the settings are kept; default config/<name>")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = p.parse_args(argv)
    args.check = args.check or ["grpc"]
    args.tags = tuple(t.strip() for t in args.tags.split(",") if t.strip())
    try:
        args.meta = dict(_key_value(item) for item in args.meta)
        args.server_option = [server_option(item) for item in args.server_option]
    except ValueError as exc:
        p.error(str(exc))
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together, e.g. --tls-cert server.crt --tls-key server.key")
    if args.mtls and not (args.tls_cert and args.tls_ca):
        p.error("--mtls needs --tls-cert, --tls-key and --tls-ca (the CA that signs client certificates)")
    if args.tls_ca and not args.mtls:
        p.error("--tls-ca only matters with --mtls; add --mtls to require client certificates")
    return args


def server_tls(args: argparse.Namespace) -> Any:
    """The ServerTLS for --tls-cert/--tls-key (and --tls-ca with --mtls), or None for plaintext."""
    if not args.tls_cert:
        return None
    from lab_services.tls import CertPair, ServerTLS  # only needed with TLS

    for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key), ("--tls-ca", args.tls_ca)):
        if path and not os.path.isfile(path):
            raise ValueError(f"{flag} {path}: no such file; make one with lab_services.tls.TLSMaterial.create(dir)")
    client_ca = CertPair(Path(args.tls_ca)) if args.mtls else None
    return ServerTLS(CertPair(Path(args.tls_cert), Path(args.tls_key)), client_ca)


def server_option(item: str) -> tuple[str, int]:
    """`grpc.name=123` as the (name, value) pair gRPC takes; the options the lab sets this way are all integers."""
    name, sep, value = item.partition("=")
    if not sep or not name.startswith("grpc.") or not value.strip().lstrip("-").isdigit():
        raise ValueError(
            f"--server-option {item!r}: expected grpc.<name>=<integer>, "
            "e.g. grpc.http2.min_ping_interval_without_data_ms=400"
        )
    return name, int(value)


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--meta {item!r}: expected KEY=VALUE, e.g. --meta version=v1")
    return key, value


def registration(args: argparse.Namespace, service_id: str, port: int, http_port: int) -> Any:
    """The ServiceRegistration for this instance; meta always carries metrics_port for Prometheus."""
    from lab_services.registry import CheckSpec, ServiceRegistration  # only needed when registering

    checks = tuple(
        CheckSpec(kind="ttl", ttl=args.ttl, deregister_critical_after=args.deregister_after)
        if kind == "ttl"
        else CheckSpec(
            kind=kind,
            interval=args.check_interval,
            timeout=args.check_timeout,
            deregister_critical_after=args.deregister_after,
            # Unless its agent was given the lab CA (--check-tls-verify), Consul checks a TLS instance
            # without verifying its certificate.
            **(
                {"grpc_use_tls": True, "tls_skip_verify": not args.check_tls_verify}
                if kind == "grpc" and args.tls_cert
                else {}
            ),
        )
        for kind in args.check
    )
    return ServiceRegistration(
        ServiceInstance(
            id=service_id,
            name=args.name,
            host=args.host,
            port=port,
            tags=args.tags,
            meta={**args.meta, "metrics_port": str(http_port)},
        ),
        http_port=http_port,
        checks=checks,
    )


def config_store(args: argparse.Namespace) -> Any:
    """The configuration store of --config-store, or None; its address defaults to the registry's."""
    if args.config_store == "none":
        return None
    from lab_services.service.config_store import default_prefix, open_store

    address = args.config_address or (args.consul if args.config_store == "consul" else args.etcd)
    return open_store(args.config_store, address, args.config_prefix or default_prefix(args.name))


def registrars(args: argparse.Namespace, reg: Any) -> list[Any]:
    from lab_services.registry import ConsulRegistrar, EtcdRegistrar

    found: list[Any] = []
    if args.registry in ("consul", "both"):
        found.append(ConsulRegistrar(reg, consul_http=args.consul))
    if args.registry in ("etcd", "both"):
        found.append(EtcdRegistrar(reg, endpoints=args.etcd, lease_ttl=args.lease_ttl))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Blocked before starting, so a SIGTERM during startup waits and still shuts down in order.
    block_stop_signals()
    try:
        server, active = start(args)
    except (ValueError, PortInUseError) as exc:  # bad flags (RegistrationError is a ValueError), a port in use
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ready = {
        "id": server.instance_id,
        "name": server.name,
        "address": server.address,
        "http": server.http_address,
        "pid": os.getpid(),
    }
    print("READY " + json.dumps(ready), flush=True)
    log.info("received %s", wait_for_stop_signal().name)
    shutdown(server, active, args.grace)
    return 0


def start(args: argparse.Namespace) -> tuple[UserServer, list[Any]]:
    """Serve, report SERVING, then register; bad flags raise ValueError before anything binds."""
    require_lab_host(args.host, "--host")
    if args.registry != "none":
        # Ports of 0 are only known after binding; check everything else before anything starts.
        registration(args, args.id or args.name, args.port or 1, args.http_port or 1).validate()
    server = UserServer(
        name=args.name,
        instance_id=args.id,
        host=args.host,
        port=args.port,
        http_port=args.http_port,
        tls=server_tls(args),
        max_connection_age_ms=args.max_connection_age_ms,
        server_options=args.server_option,
        server_kind=args.server,
        max_streams=args.max_streams,
        config_store=config_store(args),
        settings=settings_for(args),
    )
    server.start()
    active: list[Any] = []
    if args.registry != "none":
        reg = registration(args, server.instance_id, server.port, server.http_port)
        try:
            reg.validate()
        except ValueError:
            server.stop(0)
            raise
        for registrar in registrars(args, reg):
            registrar.start()
            active.append(registrar)
            log.info("registering %s with %r", server.instance_id, registrar)
    return server, active


def settings_for(args: argparse.Namespace) -> Any:
    """Runtime settings that read the overrides of this instance's tags (a canary's `overrides/v2/...`)."""
    if args.config_store == "none":
        return None
    from lab_services.service.settings import RuntimeSettings

    return RuntimeSettings(tags=args.tags)


def shutdown(server: UserServer, active: list[Any], grace: float) -> None:
    """NOT_SERVING first, so checks fail and clients move away; then deregister; then, while discovery tells the
    clients, keep answering; then stop taking calls and drain."""
    log.info("shutting down: reporting NOT_SERVING")
    server.set_serving(False)
    for registrar in active:
        log.info("deregistering with %r", registrar)
        try:
            registrar.stop()
        except Exception:  # one registry being down must not stop the drain
            log.exception("deregistering with %r failed", registrar)
    if active:
        # A client that picked this instance just before the deregistration reached its watcher still sends it
        # a call or two. The asyncio server cancels a call that arrives once it has begun to stop (the client sees
        # CANCELLED, which no client may retry), so it answers them first; watchers hear of the change in ms.
        time.sleep(min(DISCOVERY_PROPAGATION_SECONDS, grace))
    log.info("draining in-flight calls for up to %gs", grace)
    server.stop(grace)
    log.info("stopped")
