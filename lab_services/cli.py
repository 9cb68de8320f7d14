"""`discovery-lab`: start, inspect and disturb the lab cluster from a shell.

A thin shell over the library (the runtime and its typed status). Two commands reach above it, loaded only
when run: `drill` runs the lessons' drills and `bench` the benchmarks (docs/architecture.md: consumers on top).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

from lab_services.runtime import ClusterConfig, SupervisedCluster, backend_name, connect
from lab_services.runtime import binaries
from lab_services.runtime.cluster import UnknownProcessError
from lab_services.runtime.status import ClusterStatus
from lab_services.runtime.supervised import LabNotRunningError

PROCESS_OPS = ("kill", "stop", "start", "pause", "resume")


def _print_status(status: ClusterStatus) -> None:
    consul, etcd = status.consul, status.etcd
    print(f"backend     {status.backend}   (state in {status.state_dir})")
    if consul.http:
        print(f"consul      {', '.join(consul.http)}   leader: {consul.leader}   dns: {consul.dns}   ui: {consul.ui}")
    if consul.clients:
        print(f"clients     {', '.join(consul.clients)}   (client agents, one per node)")
    for datacenter, servers in consul.datacenters.items():
        if len(consul.datacenters) > 1:
            print(f"datacenter  {datacenter}: {', '.join(servers)}")
    if etcd.endpoints:
        print(f"etcd        {', '.join(etcd.endpoints)}   leader: {etcd.leader}")
    if status.prometheus.url:
        print(f"prometheus  {status.prometheus.url}")
    print()
    print(f"{'process':<14}{'kind':<15}{'pid':>8}  {'state':<9}ports")
    for proc in status.processes:
        ports = " ".join(f"{k}={v}" for k, v in proc.ports.items())
        print(f"{proc.name:<14}{proc.kind:<15}{proc.pid or '-':>8}  {proc.state:<9}{ports}")
    for moved in status.moved_ports:
        print(f"{moved.process} {moved.port_name} is on {moved.port}, not {moved.preferred}: "
              f"{moved.preferred} was in use by {moved.held_by}")
    for reaped in status.reaped:
        print(f"reaped a leftover from a dead session: {reaped}")


def _show(status: ClusterStatus, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status.to_dict()))
    else:
        _print_status(status)


def cmd_up(args: argparse.Namespace) -> int:
    config = ClusterConfig(consul_servers=args.consul_servers, etcd_members=args.etcd_members, services=args.services,
                           prometheus=not args.no_prometheus, consul_http_port=args.consul_http_port,
                           instance_addresses=args.instance_addresses, tls=args.tls,
                           consul_clients=args.consul_clients, datacenters=args.datacenters)
    cluster = SupervisedCluster()
    _show(cluster.status() if cluster.running() else cluster.launch(config), args.json)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    cluster = SupervisedCluster()
    was_running = cluster.published() is not None
    cluster.down()
    print("lab stopped" if was_running else "no lab was running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    _show(connect().status(), args.json)
    return 0


def _report(result: dict[str, Any], as_json: bool) -> int:
    print(json.dumps(result) if as_json else " ".join(f"{k}={v}" for k, v in result.items()))
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    return _report(getattr(connect(), args.command)(args.name), args.json)


def cmd_add_service(args: argparse.Namespace) -> int:
    meta = dict(item.split("=", 1) for item in args.meta)
    return _report(connect().add_service(version=args.version, meta=meta), args.json)


def cmd_reset(args: argparse.Namespace) -> int:
    steps = connect().restore()
    print("\n".join(steps) if steps else "nothing to do: every process runs and no instance was added")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Everything a learner needs, checked one line at a time, with what to do about each failure."""
    from lab_services.core.ports import holder, is_free

    problems = 0
    print(f"python      {sys.version.split()[0]} at {sys.executable}")
    for name, found in binaries.describe_binaries().items():
        if found.get("error"):
            problems += 1
            print(f"{name:<12}MISSING: {found['error']}")
        else:
            print(f"{name:<12}{found['version']:<10}{found['path']}")
    for port, who in ((8500, "consul http"), (8600, "consul dns"), (2379, "etcd"), (9090, "prometheus")):
        state = "free" if is_free("127.0.0.1", port) else f"in use by {holder(port)} (the lab will pick another port)"
        print(f"port {port:<6} {who:<12} {state}")
    try:
        print(f"lab         running, {len(connect().status().processes)} processes")
    except LabNotRunningError:
        print("lab         not running (`discovery-lab up` starts it)")
    return 1 if problems else 0


def cmd_fetch(args: argparse.Namespace) -> int:
    for name, path in binaries.fetch().items():
        print(f"{name:<12}{path}")
    return 0


def cmd_jupyter(args: argparse.Namespace) -> int:
    """`make lab`: the lab cluster up, JupyterLab open on lesson 00, and everything stopped when JupyterLab ends."""
    from lab_services.core.paths import REPO_DIR
    from lab_services.runtime import processes

    cluster = SupervisedCluster()
    started_here = not cluster.running()
    status = cluster.status() if not started_here else cluster.launch(ClusterConfig())
    _print_status(status)
    lesson = sorted((REPO_DIR / "notebooks").glob("00_*.ipynb"))[0].relative_to(REPO_DIR)
    argv = [sys.executable, "-m", "jupyter", "lab", str(lesson), f"--ServerApp.root_dir={REPO_DIR}",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={args.port}"]
    if args.no_browser:
        argv.append("--no-browser")
    if os.geteuid() == 0:
        # Containers and CI machines often run as root, which JupyterLab refuses unless told.
        argv.append("--allow-root")
    print(f"\nopening JupyterLab on {lesson}; the URL with its token follows. Ctrl-C stops JupyterLab"
          + (" and the lab." if started_here else "; the lab keeps running."))
    # JupyterLab runs in its own session like every lab process, so Ctrl-C reaches only this command,
    # which then stops JupyterLab and the lab in order instead of leaving either behind.
    jupyter = processes.spawn("jupyterlab", argv, log_path=None, cwd=REPO_DIR)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops it the same way as Ctrl-C
    try:
        return jupyter.popen.wait()
    except KeyboardInterrupt:
        jupyter.stop(timeout=20)
        return 0
    finally:
        if started_here:
            cluster.down()
            print("lab stopped")


def cmd_bench(args: argparse.Namespace) -> int:
    from lab_services.bench import discovery, startup, streams

    if args.which == "startup":
        result, describe = startup.run(runs=args.runs), startup.describe
    elif args.which == "streams":
        result, describe = streams.run(streams=args.streams, kind=args.kind), streams.describe
    else:
        result = discovery.run(args.which, registry=args.registry, mode=args.mode, runs=args.runs)
        describe = discovery.describe
    print(json.dumps(result) if args.json else describe(result))
    return 0


def cmd_drill(args: argparse.Namespace) -> int:
    """Run one failure drill against the running lab and print its timeline (or list the drills)."""
    from lab_services.lessons import drills

    if args.list or not args.name:
        for drill in drills.DRILLS.values():
            print(f"{drill.name:<15}{drill.description}")
        return 0
    params = {k: v for k, v in (("check_interval", args.check_interval), ("check_timeout", args.check_timeout),
                                ("ttl", args.ttl), ("deregister_after", args.deregister_after)) if v is not None}
    if params and not args.name.startswith("service-"):
        raise ValueError(f"invalid argument: {', '.join('--' + k.replace('_', '-') for k in params)}: only the service drills "
                         "register a probe with check settings")
    try:
        result = drills.run(connect(), args.name, **params)
    except TimeoutError as err:
        raise RuntimeError(f"the {args.name} drill did not finish (the lab is put back as far as possible): {err}") from None
    if args.json:
        print(result.to_json())
    else:
        for event in result.timeline:
            print(f"{event['t']:8.3f} s  {event['event']}")
        print(" ".join(f"{k}={v}" for k, v in result.summary.items()))
    return 0


def _meta_item(text: str) -> str:
    if "=" not in text or not text.split("=", 1)[0]:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="discovery-lab", description="Run the Service Discovery Lab cluster.")
    parser.add_argument("--backend", default=None, help="local (default) or compose; LAB_BACKEND sets it too")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the lab cluster (or show the running one)")
    up.add_argument("--consul-servers", type=int, default=3, choices=(0, 1, 3))
    up.add_argument("--etcd-members", type=int, default=3, choices=(0, 1, 3))
    up.add_argument("--services", type=int, default=3)
    up.add_argument("--consul-clients", type=int, default=0,
                    help="Consul client agents, one per simulated node on 127.0.0.51..; services register with their node's")
    up.add_argument("--datacenters", type=int, default=1, choices=(1, 2), help="2 adds Consul datacenter dc2, joined over the WAN")
    up.add_argument("--consul-http-port", type=int, default=None, help="fixed Consul HTTP port (default 8500 when free)")
    up.add_argument("--no-prometheus", action="store_true")
    up.add_argument("--tls", nargs="?", const="tls", default="off", choices=("off", "tls", "mtls"),
                    help="serve the user service over TLS (--tls) or mutual TLS (--tls mtls)")
    up.add_argument("--instance-addresses", choices=("shared", "distinct"), default="shared",
                    help="distinct: instance i on 127.0.0.(10+i), all on one port (for Consul DNS clients)")
    up.add_argument("--json", action="store_true")
    up.set_defaults(func=cmd_up)

    sub.add_parser("down", help="stop every lab process").set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="addresses, processes, leaders")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    for op in PROCESS_OPS:
        p = sub.add_parser(op, help=f"{op} one lab process, e.g. user-1 or consul-2")
        p.add_argument("name")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_process)
    add = sub.add_parser("add-service", help="start one more user-service instance, e.g. a v2 canary")
    add.add_argument("--version", default="v1", help="version tag and meta (v2 for a canary)")
    add.add_argument("--meta", action="append", default=[], type=_meta_item, metavar="K=V", help="extra meta, e.g. weight=3")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_add_service)
    sub.add_parser("reset", help="back to the shape `up` made: resume, start, remove added instances").set_defaults(func=cmd_reset)
    sub.add_parser("doctor", help="check binaries, versions and ports").set_defaults(func=cmd_doctor)
    sub.add_parser("fetch", help="download Consul, etcd and Prometheus into the project cache").set_defaults(func=cmd_fetch)
    jupyter = sub.add_parser("jupyter", help="start the lab and JupyterLab on lesson 00 (what `make lab` runs)")
    jupyter.add_argument("--no-browser", action="store_true")
    jupyter.add_argument("--port", type=int, default=8888)
    jupyter.set_defaults(func=cmd_jupyter)
    bench = sub.add_parser("bench", help="print performance numbers")
    bench.add_argument("which", choices=("startup", "propagation", "failover", "overhead", "streams"))
    bench.add_argument("--registry", choices=("consul", "etcd"), default="consul", help="where the discovery benchmarks watch")
    bench.add_argument("--mode", choices=("picker", "native"), default="picker", help="PickerChannel or NativeChannel")
    bench.add_argument("--runs", type=int, default=3)
    bench.add_argument("--streams", type=int, default=1000, help="streams: how many to hold open on one instance")
    bench.add_argument("--kind", choices=("watch", "chat"), default="watch", help="streams: WatchUsers or Chat")
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(func=cmd_bench)
    drill = sub.add_parser("drill", help="inject one fault into the running lab and time what follows (--list: the drills)")
    drill.add_argument("name", nargs="?", help="e.g. service-kill, consul-leader")
    drill.add_argument("--list", action="store_true", help="list the drills")
    drill.add_argument("--check-interval", help="service drills: the probe's check interval, e.g. 10s")
    drill.add_argument("--check-timeout", help="service drills: the probe's check timeout, e.g. 1s")
    drill.add_argument("--ttl", help="service drills: add a TTL check, e.g. 9s")
    drill.add_argument("--deregister-after", help="service drills: DeregisterCriticalServiceAfter, e.g. 1m")
    drill.add_argument("--json", action="store_true")
    drill.set_defaults(func=cmd_drill)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        backend_name(args.backend)
        return args.func(args)
    except (LabNotRunningError, UnknownProcessError, ProcessLookupError, ValueError, RuntimeError,
            NotImplementedError) as err:
        print(f"discovery-lab {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
