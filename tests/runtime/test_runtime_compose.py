"""The compose runtime against a real Docker engine: the same contract as the local runtime, on containers."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import docker.types
import psutil
import pytest
from docker_engine import require_engine
from labs import local_lab

from lab_services.core.errors import BadInputError, UnsupportedError
from lab_services.core.http import http_json
from lab_services.core.network import lab_subnet
from lab_services.core.ports import PortInUseError
from lab_services.core.wait import wait_until
from lab_services.runtime.compose import containers, engine, topology
from lab_services.runtime.compose.cluster import ComposeCluster
from lab_services.runtime.config import ClusterConfig

PROJECT = topology.PROJECT


@pytest.fixture(scope="module", autouse=True)
def docker_engine(local_lab_down) -> None:
    require_engine()


def leftovers() -> dict[str, list[str]]:
    """Containers and networks of the project that outlived `down` (named volumes are listed separately)."""
    client = engine.client()
    label = {"label": f"com.docker.compose.project={PROJECT}"}
    return {
        "containers": [c.name for c in client.containers.list(all=True, filters=label)],
        "networks": [n.name for n in client.networks.list(filters=label)],
    }


def volumes() -> list[str]:
    return sorted(
        v.name for v in engine.client().volumes.list(filters={"label": f"com.docker.compose.project={PROJECT}"})
    )


# -- errors, before any stack runs -------------------------------------------------------------------------
def test_no_engine_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(
        engine.DockerUnavailableError, match=r"no Docker engine answers at unix://.*no-docker.sock: start it"
    ):
        engine.client()


def test_permission_denied_on_the_socket_names_the_fix():
    """A user outside the docker group, as on a fresh workshop machine (the socket is root:docker 0660)."""
    assert os.geteuid() == 0, "becoming a user outside the docker group needs root (CI runs as root)"
    code = (
        "from lab_services.runtime.compose import engine\n"
        "try:\n    engine.client()\nexcept engine.DockerUnavailableError as err:\n    print(err)\n"
    )
    with tempfile.TemporaryDirectory() as shared:
        python = _readable_by_nobody(Path(shared), "from lab_services.runtime.compose import engine")
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", code]
        out = subprocess.run(
            as_nobody, capture_output=True, text=True, timeout=60, cwd="/", env={**os.environ, "PYTHONPATH": shared}
        )
    assert "permission denied on the Docker socket" in out.stdout and "usermod -aG docker" in out.stdout, (
        out.stdout + out.stderr
    )


def _readable_by_nobody(shared: Path, statement: str) -> str:
    """Copy the package, and every module `statement` imports from site-packages, into `shared` for uid 65534 to
    read, and return an interpreter that user may run: CI's fresh clone and its venv may sit where only root enters."""
    listing = (
        "import sys\n" + statement + "\n"
        "site = [p for p in sys.path if p.endswith('site-packages')][0]\n"
        "print(site)\nprint('\\n'.join({m.__file__ for m in list(sys.modules.values())"
        " if (getattr(m, '__file__', None) or '').startswith(site)}))"
    )
    site, *files = subprocess.run(
        [sys.executable, "-c", listing], capture_output=True, text=True, check=True
    ).stdout.split()
    for top in {Path(f).relative_to(site).parts[0] for f in files}:
        source = Path(site) / top
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, shared / top)
    shutil.copytree(
        Path(engine.REPO_DIR) / "lab_services", shared / "lab_services", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(["chmod", "-R", "a+rX", str(shared)], check=True)
    # The venv's interpreter when everyone may reach it, else the system's (the same minor version, as on Debian).
    for python in (Path(sys.executable).resolve(), Path(f"/usr/bin/python3.{sys.version_info.minor}")):
        if (
            python.exists()
            and all(d.stat().st_mode & 0o001 for d in python.parents)
            and python.stat().st_mode & 0o005 == 0o005
        ):
            return str(python)
    raise AssertionError(
        f"no Python 3.{sys.version_info.minor} that uid 65534 may run: {sys.executable} is in a private folder "
        f"and /usr/bin/python3.{sys.version_info.minor} is missing"
    )


def test_an_old_engine_is_refused_with_the_versions():
    with pytest.raises(engine.DockerUnavailableError, match=r"19.03.15 \(API 1.40\), too old .* Docker 20.10 or newer"):
        engine.check_api_version({"Version": "19.03.15", "ApiVersion": "1.40"})
    engine.check_api_version(engine.client().version())


def test_compose_v2_missing_names_the_plugin(monkeypatch):
    # `true` stands for a docker CLI without the compose plugin: `docker compose version` prints nothing.
    monkeypatch.setenv("LAB_DOCKER_CLI", "true")
    with pytest.raises(
        engine.DockerUnavailableError, match=r"docker compose v2 is missing .*: install the compose plugin"
    ):
        engine.compose_version()
    monkeypatch.setenv("LAB_DOCKER_CLI", "no-such-docker")
    with pytest.raises(engine.DockerUnavailableError, match="no `no-such-docker` command on PATH"):
        engine.compose_version()


def test_an_image_missing_with_pulling_disabled_names_the_build(tmp_path):
    override = tmp_path / "missing.yml"
    override.write_text("services:\n  consul-1: {image: 'lab/does-not-exist:ci', pull_policy: never}\n")
    config = engine.compose_config([engine.LEARNER_FILE, override])
    with pytest.raises(
        engine.ImageMissingError,
        match=r"lab/does-not-exist:ci \(consul-1\) is not on this engine and "
        r"pulling is disabled.*make compose-images",
    ):
        engine.missing_images(engine.client(), config)


def test_an_image_that_cannot_be_pulled_is_named_and_nothing_starts(monkeypatch, tmp_path):
    """A registry that refuses (one on 127.0.0.1:1, so nothing leaves the machine) for one image of the stack."""
    broken = tmp_path / "unpullable.yml"
    broken.write_text("services:\n  consul-2: {image: '127.0.0.1:1/lab/nothing:1', pull_policy: always}\n")
    monkeypatch.setattr(engine, "files_for", lambda images: [engine.LEARNER_FILE, engine.CI_OVERRIDE, broken])
    with pytest.raises(
        engine.ImageMissingError,
        match=r"could not pull 127.0.0.1:1/lab/nothing:1 \(consul-2\): nothing was started and the rest of the lab",
    ):
        ComposeCluster().up()
    assert leftovers() == {"containers": [], "networks": []}


def test_a_published_port_in_use_names_its_holder_the_setting_and_nothing_starts(monkeypatch):
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # an earlier stack's TIME_WAIT must not matter
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("LAB_JUPYTER_PORT", str(port))
        with pytest.raises(
            PortInUseError,
            match=rf"port {port} on 127.0.0.1 \(JupyterLab\) is in use by pid {os.getpid()}.*"
            r"LAB_JUPYTER_PORT=<another port> in compose/.env",
        ):
            ComposeCluster().up()
    assert leftovers()["containers"] == []


def test_a_subnet_another_network_holds_is_named_with_the_setting_and_nothing_starts():
    client = engine.client()
    taken = client.networks.create(
        "lab-test-overlap",
        driver="bridge",
        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(lab_subnet()))]),
    )
    try:
        with pytest.raises(BadInputError, match=r"LAB_NET_PREFIX: .* overlaps Docker network 'lab-test-overlap'"):
            ComposeCluster().up()
    finally:
        taken.remove()
    assert leftovers() == {"containers": [], "networks": []}


def test_one_cold_start_on_compose_reports_every_figure():
    from lab_services.bench import startup

    result = startup.run(runs=1, backend="compose")
    assert (
        result["backend"] == "compose"
        and result["median_seconds_to_scraped"] >= result["median_seconds_to_passing"] > 0
    )
    assert result["total_rss_mb"] > 0 and "compose runtime" in startup.describe(result)
    assert leftovers()["containers"] == [] and volumes() == []


def test_a_shape_the_stack_has_no_room_for_is_refused_with_the_way_round():
    with pytest.raises(UnsupportedError, match=r"the compose runtime has no room for .* 5 instances.*add_service"):
        ComposeCluster(ClusterConfig(services=5))


# -- the running stack --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    lab = ComposeCluster()
    try:
        lab.up()
        yield lab
    finally:
        lab.down()
    assert leftovers() == {"containers": [], "networks": []}, "down left containers or networks behind"


def consul_passing(lab: ComposeCluster) -> list[str]:
    entries = http_json(f"http://{lab.status().consul.http[0]}/v1/health/service/user?passing")
    return sorted(e["Service"]["ID"] for e in entries)


def etcd_keys(lab: ComposeCluster) -> list[str]:
    endpoint = lab.status().etcd.endpoints[0]
    prefix, end = (base64.b64encode(k).decode() for k in (b"/services/user/", b"/services/user0"))
    answer = http_json(f"http://{endpoint}/v3/kv/range", data={"key": prefix, "range_end": end})
    return sorted(base64.b64decode(kv["key"]).decode() for kv in answer.get("kvs", []))


def test_status_has_the_local_runtimes_shape(cluster, tmp_path):
    compose = cluster.status().to_dict()
    with local_lab(tmp_path, consul_servers=1, etcd_members=1, services=1) as lab:
        local = lab.status().to_dict()
    assert set(compose) == set(local) and compose["project"] == PROJECT and local["project"] is None
    for part in ("consul", "etcd", "prometheus", "config"):
        assert set(compose[part]) == set(local[part]), part
    assert set(compose["services"][0]) == set(local["services"][0]) and local["services"][0]["container"] is None
    assert set(compose["processes"][0]) == set(local["processes"][0]) and compose["processes"][0]["container"]
    assert compose["backend"] == "compose" and compose["consul"]["leader"] in {"consul-1", "consul-2", "consul-3"}
    assert compose["etcd"]["leader"] in {"etcd-1", "etcd-2", "etcd-3"}
    assert [s["address"] for s in compose["services"]] == [f"{topology.address(40 + i)}:5000" for i in (1, 2, 3)]
    assert set(compose["binaries"]) == {"consul", "etcd", "prometheus", "user-service"}


def test_pids_are_the_containers_main_processes(cluster):
    containers = cluster.containers()
    for proc in cluster.status().processes:
        container = containers[proc.name]
        assert proc.container == container.short_id and proc.state == "running"
        assert proc.pid == container.attrs["State"]["Pid"] and psutil.pid_exists(proc.pid)


def test_the_overview_shows_each_servers_address_and_container(cluster):
    from lab_services.lessons.widgets import ClusterOverview

    overview = ClusterOverview(cluster)
    rows = {r["name"]: r for r in overview.rows}
    assert rows["consul-2"]["address"] == f"{topology.consul_address(2)}:8500"
    assert rows["etcd-3"]["address"] == f"{topology.etcd_address(3)}:2379"
    assert all(r["container"] for r in rows.values()) and rows["user-1"]["container"] in overview.table.value


def test_every_service_is_registered_in_both_registries(cluster):
    assert consul_passing(cluster) == ["user-1", "user-2", "user-3"]
    assert etcd_keys(cluster) == ["/services/user/user-1", "/services/user/user-2", "/services/user/user-3"]


def test_prometheus_scrapes_every_instance_found_through_consul_and_etcd(cluster):
    from lab_services.metrics import prometheus

    url = cluster.status().prometheus.url
    prometheus.wait_for_targets(url, "lab-services", 3, timeout=60)
    # Through etcd: the etcd-sd container keeps the file_sd target file the generated config names, in a volume
    # Prometheus (and the stack's JupyterLab) mount.
    prometheus.wait_for_targets(url, "lab-services-etcd", 3, timeout=60)
    written = containers.read_files(engine.client().containers.get("discovery-lab-etcd-sd-1"), "/lab/sd")
    assert json.loads(written["etcd-targets.json"])[0]["labels"]["registry"] == "etcd"


def test_a_fresh_process_finds_the_stack_by_its_project_name(cluster):
    out = subprocess.run(
        [sys.executable, "-m", "lab_services.cli", "status", "--backend", "compose", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["backend"] == "compose" and len(status["processes"]) == 10


def test_graceful_stop_under_load_costs_the_client_no_call(cluster):
    from lab_services.discovery import ConsulWatcher
    from lab_services.discovery.picker_channel import PickerChannel
    from lab_services.service import user_pb2, user_pb2_grpc

    watcher = ConsulWatcher("user", cluster.status().consul.http, wait="5s").start()
    errors, served, stop = [], [], threading.Event()
    try:
        assert watcher.wait_for(lambda xs: len(xs) == 3, 15)
        with PickerChannel(watcher, policy="round_robin") as channel:
            stub = user_pb2_grpc.UserServiceStub(channel)

            def load() -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        served.append(
                            stub.CreateUser(
                                user_pb2.CreateUserRequest(name=f"u{n}", email=f"u{n}@lab.test"), timeout=2
                            ).served_by
                        )
                    except Exception as err:  # every failed call counts, whatever its kind
                        errors.append(err)

            caller = threading.Thread(target=load)
            caller.start()
            wait_until(lambda: len(set(served)) == 3, 10, "calls reaching all three instances")
            result = cluster.stop("user-2")
            assert result["exit_code"] == 0
            # It deregistered itself before exiting: gone from the catalog at once, not after a failed check.
            entries = http_json(f"http://{cluster.status().consul.http[0]}/v1/health/service/user")
            assert "user-2" not in {e["Service"]["ID"] for e in entries}
            assert "/services/user/user-2" not in etcd_keys(cluster)
            before = len(served)
            wait_until(lambda: len(served) > before + 20, 10, "calls going on after the stop")
            stop.set()
            caller.join()
    finally:
        stop.set()
        watcher.stop()
    assert errors == [] and len(served) > 20
    cluster.start("user-2")


def test_the_stack_grows_client_agents_a_second_datacenter_and_tls_and_shrinks_back(cluster):
    """Lesson 12's agents and dc2, lesson 10's config store and an mTLS lab: containers the runtime adds and makes
    again, each instance registered where the shape says and passing its (verified) checks."""
    cluster.ensure(ClusterConfig(consul_clients=2, datacenters=2, config_store="consul"))
    status = cluster.status()
    assert status.consul.clients == [f"{topology.address(150 + i)}:8500" for i in (1, 2)]
    assert sorted(status.consul.datacenters) == ["dc2", "lab"]
    members = http_json(f"http://{status.consul.http[0]}/v1/catalog/service/user")
    assert sorted(m["Node"] for m in members) == ["node-1", "node-1", "node-2"], "instances register with their node"
    wan = http_json(f"http://{status.consul.http[0]}/v1/agent/members?wan=1")
    assert any(m["Tags"].get("dc") == "dc2" and m["Status"] == 1 for m in wan), "dc2 joined over the WAN"
    cluster.ensure(ClusterConfig(tls="mtls"))
    status = cluster.status()
    assert status.tls and status.tls.mode == "mtls" and status.consul.clients == []
    assert consul_passing(cluster) == ["user-1", "user-2", "user-3"], "consul-1 verifies the mTLS instances"
    cluster.ensure(ClusterConfig())
    status = cluster.status()
    assert status.tls is None and (status.config.tls, status.config.consul_clients) == ("off", 0)
    assert [p.name for p in status.processes if p.kind.startswith("consul-")] == []
    assert consul_passing(cluster) == ["user-1", "user-2", "user-3"]


def test_after_a_killed_docker_engine_up_brings_the_lab_back(cluster):
    """dockerd killed (as a crash or a reboot would): the engine that starts next stops the old containers, the lab is
    then not running (not "up and dead"), and `up` starts every container again with its data."""
    pid = int(Path("/var/run/docker.pid").read_text())
    os.kill(pid, 9)
    wait_until(lambda: not psutil.pid_exists(pid), 15, "dockerd to die")
    started = subprocess.run(["bash", str(engine.COMPOSE_DIR / "engine.sh")], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr[-2000:]
    lab = ComposeCluster()
    wait_until(lambda: not lab.running(), 60, "the new engine to stop the old containers")
    lab.up()
    status = lab.status()
    assert status.consul.leader and status.etcd.leader
    assert all(p.state == "running" for p in status.processes), [(p.name, p.state) for p in status.processes]
    assert sorted(consul_passing(lab)) == ["user-1", "user-2", "user-3"]


def test_down_keeps_named_volumes_until_asked(cluster):
    """Last in the module: the stack goes down here; the fixture's teardown then checks nothing is left."""
    cluster.down()
    assert leftovers() == {"containers": [], "networks": []}
    assert len(volumes()) == 9, "down keeps the servers' data, the etcd targets and JupyterLab's home"
    cluster.down(volumes=True)
    assert volumes() == []


def test_an_option_compose_cannot_serve_says_so_in_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "lab_services.cli", "--backend", "compose", "up", "--services", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "ClusterConfig(" not in out.stderr
    assert out.stderr.startswith("discovery-lab up: the compose runtime has no room for 3 Consul servers")
    assert "use `add_service` for more instances, or the local runtime" in out.stderr
