"""The compose files: valid, pinned, loopback-only, the CI override complete, no drift from the local runtime."""

from __future__ import annotations

import ipaddress
import re
import tomllib

import pytest
import yaml
from docker_engine import require_compose_cli

from lab_services.core.paths import REPO_DIR
from lab_services.core.ports import PortAllocator
from lab_services.runtime.compose import configs, engine, topology
from lab_services.runtime.nodes import etcd, service

LEARNER = yaml.safe_load(engine.LEARNER_FILE.read_text())
CI = yaml.safe_load(engine.CI_OVERRIDE.read_text().replace("!reset", ""))


def merged(files: list) -> dict:
    require_compose_cli()
    return engine.compose_config(files)


def test_docker_compose_config_validates_the_learners_file():
    config = merged([engine.LEARNER_FILE])
    assert sorted(config["services"]) == sorted(LEARNER["services"])


def test_images_are_pinned_never_latest():
    for name, svc in LEARNER["services"].items():
        image = svc["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: {image} is not pinned to a version"
        assert "latest" not in image


def test_every_container_has_a_healthcheck_init_and_host_networking():
    for name, svc in merged([engine.LEARNER_FILE])["services"].items():
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert svc.get("init") is True and svc.get("network_mode") == "host", name
    prometheus = merged([engine.LEARNER_FILE])["services"]["prometheus"]
    assert prometheus["depends_on"]["consul-1"]["condition"] == "service_healthy"


def test_every_service_has_its_ci_counterpart_on_a_local_image():
    assert sorted(CI["services"]) == sorted(LEARNER["services"])
    config = merged([engine.LEARNER_FILE, engine.CI_OVERRIDE])
    for name, svc in config["services"].items():
        assert svc["image"].startswith("lab/") and svc["image"].endswith(":ci"), name
        assert svc["pull_policy"] == "never" and "build" not in svc, name
        # Everything but the image comes from the learner's file.
        assert svc["command"] == merged([engine.LEARNER_FILE])["services"][name]["command"], name


def test_only_loopback_addresses_appear():
    text = engine.LEARNER_FILE.read_text() + engine.CI_OVERRIDE.read_text()
    for config in configs.rendered().values():
        text += config
    addresses = set(re.findall(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", text))
    assert addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses), addresses


def test_generated_configs_are_current():
    for path, text in configs.rendered().items():
        assert path.read_text() == text, f"{path.name} is stale: run python -m lab_services.runtime.compose.configs"


def test_the_files_put_each_node_where_the_runtime_looks():
    services = LEARNER["services"]
    for node in topology.server_nodes(""):
        command = " ".join(map(str, services[node.name]["command"]))
        assert node.host in command, f"{node.name} does not listen on {node.host}"
    for i in range(1, topology.INSTANCES + 1):
        assert services[f"user-{i}"]["command"] == topology.service_command(i).args()


def test_services_get_the_same_flags_as_on_the_local_runtime():
    consul = topology.consul_nodes()[:1]
    members = topology.etcd_nodes()
    local = service.plan(1, PortAllocator(), "user", "both", consul, members)

    def flags(argv: list[str]) -> list[str]:
        return [a for a in argv if a.startswith("--")]

    assert flags(local.argv) == flags(topology.service_command(1).args())


def test_etcd_gets_the_local_runtimes_timing(tmp_path):
    local = etcd.plan(1, tmp_path / "etcd", PortAllocator(), tmp_path)[0].argv
    env = LEARNER["x-etcd-flags"]
    for flag in ("heartbeat-interval", "election-timeout"):
        value = next(a.split("=", 1)[1] for a in local if a.startswith(f"--{flag}="))
        assert env[f"ETCD_{flag.upper().replace('-', '_')}"] == value


def pins(path: str) -> dict[str, str]:
    """name -> version of a requirements file, which may hold nothing but `name==version` lines and comments."""
    lines = [ln.strip() for ln in (REPO_DIR / path).read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    found = dict(re.fullmatch(r"([\w.-]+)==([\w.]+)", ln).groups() for ln in lines)
    assert len(found) == len(lines), f"{path}: a name twice"
    return found


DECLARED = dict(
    d.split("==") for d in tomllib.loads((REPO_DIR / "pyproject.toml").read_text())["project"]["dependencies"]
)


def test_the_service_image_installs_what_pyproject_pins():
    service = pins("compose/user-service/requirements.txt")
    assert service and {k: DECLARED.get(k) for k in service} == service


def test_the_jupyter_image_installs_exactly_pyprojects_dependencies():
    # The kernel in the container imports what a learner's venv has: every dependency, at the same pin.
    assert pins("compose/jupyter/requirements.txt") == DECLARED


@pytest.mark.parametrize("dockerfile", ["user-service/Dockerfile", "jupyter/Dockerfile"])
def test_what_the_dockerfiles_copy_gets_past_dockerignore(dockerfile):
    # Both are built with the repository root as context, and .dockerignore lets in only what it names.
    kept = {ln[1:] for ln in (REPO_DIR / ".dockerignore").read_text().splitlines() if ln.startswith("!")}
    sources = re.findall(r"^COPY (?!--from)(\S+) ", (engine.COMPOSE_DIR / dockerfile).read_text(), re.M)
    assert sources and set(sources) <= kept, f"{dockerfile} copies {set(sources) - kept}, which .dockerignore drops"


@pytest.mark.parametrize("script", ["engine.sh", "images.sh"])
def test_scripts_keep_the_network_rules(script):
    text = (engine.COMPOSE_DIR / script).read_text()
    if script == "engine.sh":
        assert "--bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false" in text
    else:
        assert "build --network=none" in text
