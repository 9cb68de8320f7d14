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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from lab_services.core.errors import LabError, NotRunningError
from lab_services.runtime import Action, ClusterConfig, backend_name, binaries, connect, open_cluster
from lab_services.runtime.status import ClusterStatus

if TYPE_CHECKING:  # the CLI loads the lessons layer (and ipywidgets) only for the commands that need it
    from lab_services.core.progress import StderrProgress

PROCESS_OPS = tuple(a.value for a in Action)


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
        print(
            f"{moved.process} {moved.port_name} is on {moved.port}, not {moved.preferred}: "
            f"{moved.preferred} was in use by {moved.held_by}"
        )
    for reaped in status.reaped:
        print(f"reaped a leftover from a dead session: {reaped}")


def _show(status: ClusterStatus, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status.to_dict()))
    else:
        _print_status(status)


def cmd_up(args: argparse.Namespace) -> int:
    config = ClusterConfig(
        consul_servers=args.consul_servers,
        etcd_members=args.etcd_members,
        services=args.services,
        prometheus=not args.no_prometheus,
        consul_http_port=args.consul_http_port,
        instance_addresses=args.instance_addresses,
        tls=args.tls,
        config_store=args.config_store,
        consul_clients=args.consul_clients,
        datacenters=args.datacenters,
    )
    cluster = open_cluster()
    _show(cluster.status() if cluster.running() else cluster.launch(config), args.json)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    cluster = open_cluster()
    was_running = cluster.published() is not None
    cluster.down(volumes=args.volumes)
    print("lab stopped" if was_running else "no lab was running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    _show(connect().status(), args.json)
    return 0


def _report(result: dict[str, Any], as_json: bool) -> int:
    print(json.dumps(result) if as_json else " ".join(f"{k}={v}" for k, v in result.items()))
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    return _report(connect().act(args.name, Action(args.command)), args.json)


def cmd_add_service(args: argparse.Namespace) -> int:
    meta = dict(item.split("=", 1) for item in args.meta)
    return _report(connect().add_service(version=args.version, meta=meta), args.json)


def cmd_reset(args: argparse.Namespace) -> int:
    steps = connect().reset()
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
    except NotRunningError:
        print("lab         not running (`discovery-lab up` starts it)")
    return 1 if problems else 0


def _progress(args: argparse.Namespace) -> StderrProgress:
    """The stderr progress line of a long command: on a terminal or with --progress, never under --json."""
    from lab_services.core.progress import StderrProgress

    return StderrProgress.for_terminal(getattr(args, "json", False), force=args.progress)


def _interrupted(progress: StderrProgress, message: str) -> int:
    """Ctrl-C: end the progress line, say what was put back, and exit 130 (the shell's code for SIGINT)."""
    progress.done()
    print(message, file=sys.stderr)
    return 130


def cmd_fetch(args: argparse.Namespace) -> int:
    progress = _progress(args)
    try:
        fetched = binaries.fetch(progress=progress)
    finally:
        progress.done()
    for name, path in fetched.items():
        print(f"{name:<12}{path}")
    return 0


def cmd_classroom(args: argparse.Namespace) -> int:
    """`make classroom`: a JupyterHub on this machine that gives every learner their own lab, until Ctrl-C."""
    from lab_services.classroom.hub import Hub
    from lab_services.classroom.settings import HubSettings
    from lab_services.core.paths import REPO_DIR

    data = Path(args.data).resolve() if args.data else REPO_DIR / ".classroom"
    settings = HubSettings.for_instructor(
        data, ip=args.ip, port=args.port, spawner=args.spawner, admin=args.admin, image=args.image
    )
    hub = Hub(settings).start()
    print(f"classroom hub: {settings.url}")
    print(f"  learners: any name, password {settings.learner_password}")
    print(
        f"  instructor: {settings.admin}, password {settings.admin_password} (the admin page: {settings.url}hub/admin)"
    )
    print(
        f"  kept in {data / 'settings.json'}; the hub's log: {hub.log_path}.\n"
        "Ctrl-C stops the hub and every learner's lab."
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while hub.process is not None and hub.process.poll() is None:
            time.sleep(1)
        print(f"the hub exited; last lines of {hub.log_path}:\n{hub.tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        hub.stop()


def cmd_jupyter(args: argparse.Namespace) -> int:
    """`make lab`: the lab cluster up, JupyterLab open on lesson 00, and everything stopped when JupyterLab ends."""
    from lab_services.core.paths import REPO_DIR
    from lab_services.runtime import processes

    cluster = open_cluster()
    started_here = not cluster.running()
    status = cluster.status() if not started_here else cluster.launch(ClusterConfig())
    _print_status(status)
    served = cluster.notebook_server()
    if served is not None:
        # The runtime serves JupyterLab itself (the compose stack's, on its network): open that one, start no other.
        print(f"\nthe lab's own JupyterLab serves lesson 00: open {served.open_url}")
        return 0
    lesson = sorted((REPO_DIR / "notebooks").glob("00_*.ipynb"))[0].relative_to(REPO_DIR)
    argv = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        str(lesson),
        f"--ServerApp.root_dir={REPO_DIR}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={args.port}",
    ]
    if args.no_browser:
        argv.append("--no-browser")
    if os.geteuid() == 0:
        # Containers and CI machines often run as root, which JupyterLab refuses unless told.
        argv.append("--allow-root")
    print(
        f"\nopening JupyterLab on {lesson}; the URL with its token follows. Ctrl-C stops JupyterLab"
        + (" and the lab." if started_here else "; the lab keeps running.")
    )
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
    from lab_services.bench import classroom, discovery, startup, streams

    progress = _progress(args)
    # Every benchmark starts its own lab (or instance) in a `with` block, so an interrupt stops what it started.
    try:
        if args.which == "startup":
            # The compose runtime is measured next to the local one, in the same run, so the two rows compare.
            backends = list(dict.fromkeys(["local", backend_name()]))
            results = [startup.run(runs=args.runs, backend=b, progress=progress) for b in backends]
            print(
                json.dumps(results if len(results) > 1 else results[0])
                if args.json
                else "\n".join(startup.describe(r) for r in results)
            )
            return 0
        if args.which == "streams":
            result, describe = streams.run(streams=args.streams, kind=args.kind, progress=progress), streams.describe
        elif args.which == "classroom":
            if not 1 <= args.learners <= 60:
                raise ValueError(f"invalid argument: --learners: {args.learners}; use 1 to 60")
            result = classroom.run(args.learners, args.spawner, args.image, progress=progress)
            describe = classroom.describe
        else:
            result = discovery.run(
                args.which, registry=args.registry, mode=args.mode, runs=args.runs, progress=progress
            )
            describe = discovery.describe
    except KeyboardInterrupt:
        return _interrupted(progress, f"discovery-lab bench {args.which}: interrupted; what it started is stopped")
    finally:
        progress.done()
    print(json.dumps(result) if args.json else describe(result))
    return 0


def cmd_drill(args: argparse.Namespace) -> int:
    """Run one failure drill against the running lab and print its timeline (or list the drills)."""
    from lab_services.lessons import drills

    if args.list or not args.name:
        for drill in drills.DRILLS.values():
            print(f"{drill.name:<15}{drill.description}")
        return 0
    params = {
        k: v
        for k, v in (
            ("check_interval", args.check_interval),
            ("check_timeout", args.check_timeout),
            ("ttl", args.ttl),
            ("deregister_after", args.deregister_after),
        )
        if v is not None
    }
    if params and not args.name.startswith("service-"):
        raise ValueError(
            f"invalid argument: {', '.join('--' + k.replace('_', '-') for k in params)}: only the service drills "
            "register a probe with check settings"
        )
    progress = _progress(args)
    try:
        result = drills.run(connect(), args.name, progress=progress, **params)
    except TimeoutError as err:
        raise RuntimeError(
            f"the {args.name} drill did not finish (the lab is put back as far as possible): {err}"
        ) from None
    except KeyboardInterrupt:
        # The drill's own `finally` has already put back what it disturbed (probe stopped and deregistered,
        # killed servers started again) before the interrupt got here.
        return _interrupted(progress, f"discovery-lab drill {args.name}: interrupted; the lab is put back as it was")
    finally:
        progress.done()
    if args.json:
        print(result.to_json())
    else:
        for event in result.timeline:
            print(f"{event['t']:8.3f} s  {event['event']}")
        print(" ".join(f"{k}={v}" for k, v in result.summary.items()))
    return 0


def cmd_capstone(args: argparse.Namespace) -> int:
    """Lesson 14 on stage: learners' clients (and the reference and naive ones) through the chaos run, one table."""
    from lab_services.core.table import text_table
    from lab_services.lessons import capstone
    from lab_services.lessons.exercises import lesson_14

    contenders: list[tuple[str, Any]] = []
    for path in args.files:
        try:
            contenders.append((path, capstone.load_build_client(path)))
        except capstone.ClientError as err:
            contenders.append((path, err))
    contenders += [
        (name, client)
        for name, client, wanted in (
            ("reference", lesson_14.resilient_client, args.reference),
            ("naive", lesson_14.naive_client, args.naive),
        )
        if wanted
    ]
    if not contenders:
        raise ValueError(
            "invalid argument: give learners' files (each defining build_client(consul_http)), --reference or --naive"
        )
    slo = capstone.SLO(
        success_ratio=args.success_ratio,
        p99_ms=args.p99_ms,
        max_outage=args.max_outage,
        max_sent_to_removed=args.max_sent_to_removed,
    )
    try:
        table = capstone.scoreboard(
            connect(),
            contenders,
            slo=slo,
            duration=args.duration,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except KeyboardInterrupt:
        print("discovery-lab capstone run: interrupted; the chaos run put the lab back", file=sys.stderr)
        return 130
    print(json.dumps(table.rows) if args.json else text_table(table.rows))
    return 0


def _config_store(args: argparse.Namespace) -> Any:
    """The lab's configuration store: --store, else the one the lab's instances follow, else Consul."""
    from lab_services.service.config_store import default_prefix, open_store

    status = connect().status()
    kind = args.store or (status.config.config_store if status.config.config_store != "none" else "consul")
    address = status.consul.http[0] if kind == "consul" and status.consul.http else ",".join(status.etcd.endpoints)
    if not address:
        raise ValueError(f"invalid argument: --store: the lab runs no {kind} servers")
    return open_store(kind, address, default_prefix(status.config.service_name)), status


def _setting_key(key: str) -> str:
    """A setting name, or `overrides/TAG/NAME` (what instances tagged TAG read first): unknown names are refused."""
    from lab_services.service.settings import OVERRIDES, SCHEMA, InvalidSetting

    parts = key.split("/")
    if parts[-1] not in SCHEMA or not (len(parts) == 1 or (len(parts) == 3 and parts[0] == OVERRIDES and parts[1])):
        raise InvalidSetting(
            key,
            f"unknown setting; use one of {', '.join(sorted(SCHEMA))}, "
            f"or {OVERRIDES}/TAG/NAME for the instances tagged TAG",
        )
    return parts[-1]


def cmd_config(args: argparse.Namespace) -> int:
    """Runtime settings in the configuration centre (lesson 10): set, get, history, rollback."""
    import urllib.error

    from lab_services.service.admin import AdminClient
    from lab_services.service.config_store import Version
    from lab_services.service.settings import validate

    store, status = _config_store(args)
    if args.action == "get":
        snap = store.snapshot()
        instances = {}
        for svc in status.services:
            try:
                instances[svc.id] = AdminClient(svc.admin, timeout=2).settings()
            except urllib.error.HTTPError as err:
                instances[svc.id] = {
                    "error": "not following a configuration store (`up --config-store consul`)"
                    if err.code == 404
                    else str(err)
                }
            except (OSError, ValueError) as err:
                instances[svc.id] = {"error": str(err)}
        if args.json:
            print(
                json.dumps(
                    {
                        "store": store.kind,
                        "revision": snap.revision,
                        "stored": snap.values,
                        "modified": snap.modified,
                        "instances": instances,
                    }
                )
            )
            return 0
        print(f"stored in {store!r} at revision {snap.revision}:")
        for key, value in sorted(snap.values.items()):
            print(f"  {key:<28}{value!r:<24}(revision {snap.modified[key]})")
        print("instances:")
        for name, report in instances.items():
            if "values" not in report:
                print(f"  {name:<10}{report.get('error', 'not following a configuration store')}")
                continue
            values = " ".join(f"{k}={v!r}" for k, v in report["values"].items())
            extra = "".join(
                (
                    f"  REJECTED revision {report['rejected']['revision']}: {report['rejected']['errors']}"
                    if report["rejected"]
                    else ""
                ),
            )
            extra += f"  STORE UNREACHABLE, keeping {report['keeping']}" if report["store"] != "reachable" else ""
            print(f"  {name:<10}revision {report['revision']:<6} from {report['source']:<7}{values}{extra}")
        return 0
    name = _setting_key(args.key)
    if args.action == "set":
        validate(name, args.value)
        revision = store.put(args.key, args.value, cas=args.cas)
        print(f"{args.key} = {args.value!r} at revision {revision} in {store.kind}")
    elif args.action == "history":
        versions = store.history(args.key)
        if not versions:
            print(f"{args.key}: no history in {store.kind}")
        for version in versions:
            print(f"  revision {version.revision:<8}{version.value!r}")
    else:  # rollback
        versions = store.history(args.key)
        if args.revision is None:
            if len(versions) < 2:
                raise ValueError(
                    f"invalid argument: {args.key}: no earlier value to roll back to (history: {len(versions)})"
                )
            target = versions[-2]
        else:
            target = Version(args.revision, store.value_at(args.key, args.revision))
            if target.value is None:
                raise ValueError(f"invalid argument: REVISION: {args.key} had no value at revision {args.revision}")
        validate(name, target.value)
        revision = store.put(args.key, target.value)
        print(
            f"{args.key} rolled back to {target.value!r} (the value of revision {target.revision}), "
            f"now revision {revision}"
        )
    return 0


def _meta_item(text: str) -> str:
    if "=" not in text or not text.split("=", 1)[0]:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return text


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line, naming the command and where its help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="discovery-lab", description="Run the Service Discovery Lab cluster.")
    parser.add_argument("--backend", default=None, help="local (default) or compose; LAB_BACKEND sets it too")
    sub = parser.add_subparsers(dest="command", required=True)
    # `discovery-lab up --backend compose` works as well as `discovery-lab --backend compose up`; SUPPRESS
    # keeps a subcommand that is not given it from overwriting the global one.
    backend_option = argparse.ArgumentParser(add_help=False)
    backend_option.add_argument("--backend", default=argparse.SUPPRESS, help="local or compose (as before the command)")

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[backend_option], **kwargs)

    up = command("up", help="start the lab cluster (or show the running one)")
    up.add_argument("--consul-servers", type=int, default=3, choices=(0, 1, 3))
    up.add_argument("--etcd-members", type=int, default=3, choices=(0, 1, 3))
    up.add_argument("--services", type=int, default=3)
    up.add_argument(
        "--consul-clients",
        type=int,
        default=0,
        help="Consul client agents, one per simulated node on 127.0.0.51..; services register with their node's",
    )
    up.add_argument(
        "--datacenters", type=int, default=1, choices=(1, 2), help="2 adds Consul datacenter dc2, joined over the WAN"
    )
    up.add_argument(
        "--consul-http-port", type=int, default=None, help="fixed Consul HTTP port (default 8500 when free)"
    )
    up.add_argument("--no-prometheus", action="store_true")
    up.add_argument(
        "--tls",
        nargs="?",
        const="tls",
        default="off",
        choices=("off", "tls", "mtls"),
        help="serve the user service over TLS (--tls) or mutual TLS (--tls mtls)",
    )
    up.add_argument(
        "--instance-addresses",
        choices=("shared", "distinct"),
        default="shared",
        help="distinct: instance i on 127.0.0.(10+i), all on one port (for Consul DNS clients)",
    )
    up.add_argument(
        "--config-store",
        choices=("none", "consul", "etcd"),
        default="none",
        help="instances follow runtime settings in Consul KV or etcd and apply them live (lesson 10)",
    )
    up.add_argument("--json", action="store_true")
    up.set_defaults(func=cmd_up)

    down = command("down", help="stop every lab process")
    down.add_argument("--volumes", action="store_true", help="compose runtime: remove the servers' named volumes too")
    down.set_defaults(func=cmd_down)
    status = command("status", help="addresses, processes, leaders")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    for op in PROCESS_OPS:
        p = command(op, help=f"{op} one lab process, e.g. user-1 or consul-2")
        p.add_argument("name")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_process)
    add = command("add-service", help="start one more user-service instance, e.g. a v2 canary")
    add.add_argument("--version", default="v1", help="version tag and meta (v2 for a canary)")
    add.add_argument(
        "--meta", action="append", default=[], type=_meta_item, metavar="K=V", help="extra meta, e.g. weight=3"
    )
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_add_service)
    command(
        "reset",
        help="back to a fresh `up`: resume, start, remove added instances, and what lessons left "
        "(registrations, KV and etcd keys, faults, users)",
    ).set_defaults(func=cmd_reset)
    command("doctor", help="check binaries, versions and ports").set_defaults(func=cmd_doctor)
    fetch = command("fetch", help="download Consul, etcd and Prometheus into the project cache")
    fetch.add_argument(
        "--progress", action="store_true", help="show the progress line on stderr even when it is not a terminal"
    )
    fetch.set_defaults(func=cmd_fetch)
    classroom = command(
        "classroom", help="a JupyterHub giving every learner their own lab (what `make classroom` runs)"
    )
    classroom.add_argument("--ip", default="127.0.0.1", help="the address learners open; not loopback needs passwords")
    classroom.add_argument("--port", type=int, default=8000)
    classroom.add_argument(
        "--spawner",
        default="local",
        help="local: learners as processes of this machine; docker: each in a container of the lab's image",
    )
    classroom.add_argument("--admin", default="instructor", help="the instructor's login name")
    classroom.add_argument("--image", help="docker: the learners' image (default: the lab's JupyterLab image)")
    classroom.add_argument("--data", help="the hub's database, passwords and learners' homes (default .classroom/)")
    classroom.set_defaults(func=cmd_classroom)
    jupyter = command("jupyter", help="start the lab and JupyterLab on lesson 00 (what `make lab` runs)")
    jupyter.add_argument("--no-browser", action="store_true")
    jupyter.add_argument("--port", type=int, default=8888)
    jupyter.set_defaults(func=cmd_jupyter)
    bench = command("bench", help="print performance numbers")
    bench.add_argument("which", choices=("startup", "propagation", "failover", "overhead", "streams", "classroom"))
    bench.add_argument("--learners", type=int, default=5, help="classroom: how many learners log in at once")
    bench.add_argument("--spawner", choices=("local", "docker"), default="local", help="classroom: how learners run")
    bench.add_argument("--image", default="", help="classroom with docker: the learners' image (default: the lab's)")
    bench.add_argument(
        "--registry", choices=("consul", "etcd"), default="consul", help="where the discovery benchmarks watch"
    )
    bench.add_argument("--mode", choices=("picker", "native"), default="picker", help="PickerChannel or NativeChannel")
    bench.add_argument("--runs", type=int, default=3)
    bench.add_argument("--streams", type=int, default=1000, help="streams: how many to hold open on one instance")
    bench.add_argument("--kind", choices=("watch", "chat"), default="watch", help="streams: WatchUsers or Chat")
    bench.add_argument("--json", action="store_true")
    bench.add_argument(
        "--progress", action="store_true", help="show the progress line on stderr even when it is not a terminal"
    )
    bench.set_defaults(func=cmd_bench)
    config = command("config", help="runtime settings in the configuration centre: set, get, history, rollback")
    config.add_argument(
        "--store", choices=("consul", "etcd"), help="default: the store the lab's instances follow, else consul"
    )
    actions = config.add_subparsers(dest="action", required=True)
    cset = actions.add_parser("set", help="write a setting, e.g. latency_ms 200 (validated before anything is written)")
    cset.add_argument("key", help="greeting, signups_enabled, latency_ms, or overrides/TAG/NAME")
    cset.add_argument("value")
    cset.add_argument("--cas", type=int, help="write only if the key is still at this revision (0: not yet set)")
    cget = actions.add_parser("get", help="the stored values and what every instance applied, with its revision")
    cget.add_argument("--json", action="store_true")
    chist = actions.add_parser("history", help="earlier values of a setting")
    chist.add_argument("key")
    cback = actions.add_parser("rollback", help="write an earlier value again (default: the one before the current)")
    cback.add_argument("key")
    cback.add_argument("revision", nargs="?", type=int)
    for p in (cset, cget, chist, cback):
        p.add_argument("--store", choices=("consul", "etcd"), default=argparse.SUPPRESS)
    config.set_defaults(func=cmd_config)
    capstone = command("capstone", help="lesson 14: grade learners' clients through the chaos run")
    capstone_actions = capstone.add_subparsers(dest="action", required=True)
    crun = capstone_actions.add_parser(
        "run", help="run each client through the chaos run, one after another, and print one table"
    )
    crun.add_argument("files", nargs="*", help="learners' Python files, each defining build_client(consul_http)")
    crun.add_argument("--reference", action="store_true", help="also the published reference client")
    crun.add_argument("--naive", action="store_true", help="also the naive one-address client")
    crun.add_argument(
        "--duration", type=float, default=14.0, help="seconds of traffic per client (longer than the 11 s of faults)"
    )
    crun.add_argument("--success-ratio", type=float, default=0.97)
    crun.add_argument("--p99-ms", type=float, default=500.0)
    crun.add_argument("--max-outage", type=float, default=3.0, help="seconds of calls failing in a row")
    crun.add_argument(
        "--max-sent-to-removed",
        type=int,
        default=0,
        help="successful calls served by an instance outside Consul's passing set",
    )
    crun.add_argument("--json", action="store_true")
    capstone.set_defaults(func=cmd_capstone)
    drill = command("drill", help="inject one fault into the running lab and time what follows (--list: the drills)")
    drill.add_argument("name", nargs="?", help="e.g. service-kill, consul-leader")
    drill.add_argument("--list", action="store_true", help="list the drills")
    drill.add_argument("--check-interval", help="service drills: the probe's check interval, e.g. 10s")
    drill.add_argument("--check-timeout", help="service drills: the probe's check timeout, e.g. 1s")
    drill.add_argument("--ttl", help="service drills: add a TTL check, e.g. 9s")
    drill.add_argument("--deregister-after", help="service drills: DeregisterCriticalServiceAfter, e.g. 1m")
    drill.add_argument("--json", action="store_true")
    drill.add_argument(
        "--progress", action="store_true", help="show the progress line on stderr even when it is not a terminal"
    )
    drill.set_defaults(func=cmd_drill)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; any error becomes one line on stderr naming the command, and exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        if args.backend:
            # Through the environment, so every call below and every process it starts uses the same runtime.
            os.environ["LAB_BACKEND"] = backend_name(args.backend)
        backend_name()
        return args.func(args)
    except (LabError, OSError, ValueError, RuntimeError, KeyError) as err:
        print(f"discovery-lab {args.command}: {_one_line(err)}", file=sys.stderr)
        return 2


def _one_line(err: BaseException) -> str:
    """The error's first line; a longer message (a log's last lines) is in the file it names."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    lines = text.strip().splitlines() or [type(err).__name__]
    return lines[0] + (f" ({len(lines) - 1} more lines: see the log it names)" if len(lines) > 1 else "")


if __name__ == "__main__":
    sys.exit(main())
