"""The compose files: valid, pinned, on their own bridge with only 127.0.0.1 published, the CI override complete,
no drift from the local runtime."""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib

import pytest
import yaml
from docker_engine import require_compose_cli

from lab_services.core.network import lab_subnet
from lab_services.core.paths import REPO_DIR
from lab_services.core.ports import PortAllocator
from lab_services.runtime.compose import configs, containers, engine, topology
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


def test_every_container_has_a_healthcheck_init_and_a_fixed_address_on_the_labs_bridge():
    config = merged([engine.LEARNER_FILE])
    subnet = ipaddress.ip_network(config["networks"]["lab"]["ipam"]["config"][0]["subnet"])
    assert config["networks"]["lab"]["driver"] == "bridge" and subnet == lab_subnet()
    for name, svc in config["services"].items():
        assert svc.get("init") is True, name
        if svc.get("labels", {}).get("lab.role") == "net":
            continue  # an instance's address holder: `sleep`, nothing to check
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        # An instance joins its holder's network (it keeps the address when the instance dies); the rest are on it.
        holder = config["services"][svc["network_mode"].removeprefix("service:")] if "network_mode" in svc else svc
        address = ipaddress.ip_address(holder["networks"]["lab"]["ipv4_address"])
        assert address in subnet, f"{name} is at {address}, outside {subnet}"
        assert "network_mode" not in svc or svc["network_mode"] == f"service:{name}-net", name
        # A laptop runs these all day: no check more often than every 5 s.
        assert svc["healthcheck"]["interval"] in ("5s", "10s"), name
    assert config["services"]["prometheus"]["depends_on"]["consul-1"]["condition"] == "service_healthy"


def test_only_three_ports_are_published_and_only_on_127_0_0_1():
    config = merged([engine.LEARNER_FILE])
    published = {
        name: [(p["host_ip"], int(p["published"]), p["target"]) for p in svc["ports"]]
        for name, svc in config["services"].items()
        if svc.get("ports")
    }
    ports = engine.published_ports()
    assert published == {
        "jupyter": [("127.0.0.1", ports["LAB_JUPYTER_PORT"], 8888)],
        "consul-1": [("127.0.0.1", ports["LAB_CONSUL_PORT"], 8500)],
        "prometheus": [("127.0.0.1", ports["LAB_PROMETHEUS_PORT"], 9090)],
    }


def test_volumes_are_named_or_the_repositorys_own_files():
    config = merged([engine.LEARNER_FILE])
    for name, svc in config["services"].items():
        for volume in svc.get("volumes", []):
            if volume["type"] == "volume":
                assert volume["source"] in config["volumes"], f"{name}: anonymous volume at {volume['target']}"
            else:
                assert volume["type"] == "bind", f"{name}: {volume}"
                assert volume["source"].startswith(str(REPO_DIR)) or volume["target"] == "/var/run/docker.sock", volume


def test_our_images_are_built_never_pulled_under_a_name_no_registry_serves():
    for name, svc in LEARNER["services"].items():
        if "build" in svc or svc["image"].startswith("discovery-lab"):
            assert svc["image"].startswith("discovery-lab.invalid/") and svc["pull_policy"] == "build", name


def test_the_consul_ui_is_on_by_flag_and_old_data_may_rejoin():
    for i in (1, 2, 3):
        command = LEARNER["services"][f"consul-{i}"]["command"]
        assert "-ui" in command and "-config-file=/etc/lab/rejoin.json" in command
    assert "ui" not in json.loads((engine.COMPOSE_DIR / "consul/server.json").read_text())
    assert json.loads((engine.COMPOSE_DIR / "consul/rejoin.json").read_text()) == {"server_rejoin_age_max": "8760h"}
    ci = merged([engine.LEARNER_FILE, engine.CI_OVERRIDE])["services"]["consul-1"]["volumes"]
    assert [v["source"] for v in ci if v["target"] == "/etc/lab/rejoin.json"] == [
        str(engine.COMPOSE_DIR / "consul/empty.json")
    ]


def test_the_env_file_sets_everything_the_file_interpolates():
    used = set(re.findall(r"\$\{(\w+)", engine.LEARNER_FILE.read_text()))
    env = dict(re.findall(r"^(\w+)=(.*)$", (engine.COMPOSE_DIR / ".env").read_text(), re.M))
    assert used <= set(env), f"compose/.env lacks {used - set(env)}"


def test_every_service_has_its_ci_counterpart_on_a_local_image():
    assert sorted(CI["services"]) == sorted(LEARNER["services"])
    config = merged([engine.LEARNER_FILE, engine.CI_OVERRIDE])
    for name, svc in config["services"].items():
        assert svc["image"].startswith("lab/") and svc["image"].endswith(":ci"), name
        assert svc["pull_policy"] == "never" and "build" not in svc, name
        # Everything but the image comes from the learner's file.
        assert svc["command"] == merged([engine.LEARNER_FILE])["services"][name]["command"], name


def test_only_lab_addresses_appear():
    text = engine.LEARNER_FILE.read_text() + engine.CI_OVERRIDE.read_text()
    for config in configs.rendered().values():
        text += config
    addresses = set(re.findall(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", text))
    assert addresses and all(ipaddress.ip_address(a).is_loopback or a == "0.0.0.0" for a in addresses), addresses


def test_generated_configs_are_current():
    for path, text in configs.rendered().items():
        assert path.read_text() == text, f"{path.name} is stale: run python -m lab_services.runtime.compose.configs"


def test_the_files_put_each_node_where_the_runtime_looks():
    services = merged([engine.LEARNER_FILE])["services"]
    for node in topology.server_nodes(""):
        assert services[node.name]["networks"]["lab"]["ipv4_address"] == node.host, node.name
    for i in range(1, topology.INSTANCES + 1):
        holder = services[f"user-{i}-net"]["networks"]["lab"]
        assert holder["ipv4_address"] == topology.service_address(i) and holder["aliases"] == [f"user-{i}"]
    assert services["jupyter"]["networks"]["lab"]["ipv4_address"] == topology.jupyter_address()
    assert services["jupyter"]["environment"]["LAB_KERNEL_HOST"] == topology.jupyter_address()
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
    env = LEARNER["x-etcd-env"]
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


def test_auxiliary_addresses_are_taken_in_turn_not_the_one_just_freed():
    addresses = [topology.address(last) for last in topology.AUXILIARY_HOSTS]
    first, second, third = addresses[:3]
    assert containers.next_free(addresses, set()) == first
    assert containers.next_free(addresses, set(), after=first) == second, "the address just freed waits its turn"
    assert containers.next_free(addresses, {second}, after=first) == third
    assert containers.next_free(addresses, set(), after=addresses[-1]) == first, "it wraps round"
    with pytest.raises(RuntimeError, match="no free address left"):
        containers.next_free(addresses, set(addresses))
