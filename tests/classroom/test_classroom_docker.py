"""The classroom on DockerSpawner, against the real engine: each learner's server in a container of the lab's image
(uid 1000, no capabilities, no Docker socket) on a network of their own. Each kernel starts lesson 00's lab on its
container's loopback and passes the checker; neither learner reaches the other's container; stopping the hub
leaves no container and no network."""

from __future__ import annotations

import json
import urllib.request

import docker
import pytest
from classroom_hub import LESSON_00_CHECKED
from docker_engine import require_engine

from lab_services.classroom import spawning
from lab_services.classroom.hub import Hub, HubError
from lab_services.classroom.remote_kernel import RemoteKernel
from lab_services.classroom.settings import HubSettings

CI_IMAGE = "lab/jupyter:ci"  # compose/images.sh; a learner's machine builds compose/jupyter/Dockerfile instead
LEARNERS = ("alice", "bob")
LESSON_00 = (
    LESSON_00_CHECKED
    + """
print(json.dumps({"uid": os.getuid(), "address": socket.gethostbyname(socket.gethostname()),
                  "consul": status.consul.http[0], "processes": sorted(p.name for p in status.processes),
                  "docker_socket": os.path.exists("/var/run/docker.sock"),
                  "capabilities": open("/proc/self/status").read().split("CapEff:")[1].split()[0]}))
"""
)
REACH = """
import socket
try:
    socket.create_connection(("{address}", 8888), timeout=3).close()
    print("reached")
except OSError as err:
    print(f"refused or unreachable: {{err}}")
"""


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    require_engine()
    client = docker.from_env()
    if not client.images.list(name=CI_IMAGE):
        pytest.fail(f"{CI_IMAGE} is missing: `make compose-images` builds it")
    settings = HubSettings(
        tmp_path_factory.mktemp("hub"),
        port=18810,
        hub_port=18811,
        board_port=18813,
        spawner="docker",
        image=CI_IMAGE,
        mount_checkout=True,
    )
    hub = Hub(settings).start()
    kernels = {}
    try:
        for name in LEARNERS:
            hub.add_learner(name)
            kernels[name] = RemoteKernel(hub.start_server(name, timeout=180), settings.api_token).start()
        yield hub, kernels, client
    finally:
        hub.stop()
        for name in LEARNERS:
            volume = client.volumes.list(filters={"name": f"{spawning.LEARNER_PREFIX}{name}"})
            for found in volume:
                found.remove(force=True)


@pytest.fixture(scope="module")
def labs(classroom):
    _, kernels, _ = classroom
    return {name: json.loads(kernel.execute(LESSON_00)) for name, kernel in kernels.items()}


def test_a_missing_learners_image_is_named_with_its_build_before_anything_starts(tmp_path):
    require_engine()
    settings = HubSettings(tmp_path, port=18820, hub_port=18821, spawner="docker", image="discovery-lab.invalid/no:0")
    with pytest.raises(HubError, match=r"image: 'discovery-lab.invalid/no:0' is not on this Docker engine.*build"):
        Hub(settings).start()
    assert not (tmp_path / "jupyterhub.log").exists(), "nothing started"


def test_each_learner_runs_lesson_00_in_their_own_container_without_privileges(labs):
    for name, lab in labs.items():
        assert lab["uid"] == 1000, f"{name}'s server runs as uid {lab['uid']}"
        assert not lab["docker_socket"], f"{name}'s container has the Docker socket"
        assert int(lab["capabilities"], 16) == 0, f"{name}'s container has capabilities {lab['capabilities']}"
        assert lab["consul"].startswith("127.0.0.1:"), "the learner's lab runs on their container's loopback"
        assert "consul-1" in lab["processes"] and "user-2" in lab["processes"]
    assert labs["alice"]["address"] != labs["bob"]["address"]


def test_neither_learner_reaches_the_others_container(classroom, labs):
    _, kernels, _ = classroom
    for name, other in (("alice", "bob"), ("bob", "alice")):
        answer = kernels[name].execute(REACH.format(address=labs[other]["address"]))
        assert answer.startswith("refused or unreachable"), f"{name} reached {other}'s server: {answer}"


def test_each_learner_is_on_a_network_of_their_own(classroom, labs):
    _, _, client = classroom
    for name, lab in labs.items():
        network = client.networks.get(spawning.network_name(name))
        members = [c["IPv4Address"].split("/")[0] for c in network.attrs["Containers"].values()]
        assert members == [lab["address"]], f"{name}'s network holds {members}"


def test_each_learners_checker_reaches_the_board_from_their_container(classroom, labs):
    """The kernels in the containers report to the board on the classroom network's gateway (LAB_BOARD_URL)."""
    hub, _, _ = classroom
    token = hub.api("POST", f"users/{hub.settings.admin}/tokens", {"scopes": ["access:services!service=progress"]})
    request = urllib.request.Request(
        f"{hub.settings.url}services/progress/api/board", headers={"Authorization": f"token {token['token']}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        rows = {row["learner"]: row for row in json.loads(answer.read())["learners"]}
    for name in LEARNERS:
        assert rows[name]["check"] == "00-shape" and rows[name]["passed"], rows.get(name)


def test_stopping_the_hub_leaves_no_container_and_no_network(classroom, labs):
    """Last in the module: the hub goes down here."""
    hub, _, client = classroom
    hub.stop()
    label = f"{spawning.CLASSROOM_LABEL}={hub.settings.data_dir}"
    assert client.containers.list(all=True, filters={"label": label}) == []
    assert client.networks.list(filters={"label": label}) == []
