"""classroom/kubernetes/values.yaml: valid for the pinned Zero to JupyterHub chart, and as locked down as it says.

Helm validates a release's values as the chart's defaults with the user's values merged over them, against the chart's
schema; this does the same with the copies in classroom/kubernetes/z2jh-<version>/ (SOURCE.md there says where they
come from). No cluster is needed, and none is used: what the chart renders and what Kubernetes enforces is not
checked here (classroom/README.md).
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from lab_services.classroom.singleuser import FIRST_LESSON
from lab_services.core.paths import REPO_DIR

KUBE_DIR = REPO_DIR / "classroom" / "kubernetes"
VALUES = KUBE_DIR / "values.yaml"
# Issue 20's per-learner targets, which the resources must cover until the lead's measurement replaces them.
MEMORY_TARGET_BYTES = 0.9e9
IDLE_CPU_TARGET = 0.05

_UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _chart_dir() -> Path:
    (chart,) = sorted(KUBE_DIR.glob("z2jh-*"))  # exactly one pinned chart version
    return chart


def _chart_version() -> str:
    return _chart_dir().name.removeprefix("z2jh-")


def _load(path: Path):
    return yaml.safe_load(path.read_text())


def helm_merge(defaults: dict, values: dict) -> dict:
    """Helm's coalescing of a chart's defaults with user values: maps merge key by key, anything else (lists
    included) replaces, and a null in the user's values deletes the chart's key."""
    merged = copy.deepcopy(defaults)
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _errors(values: dict) -> list[str]:
    chart = _chart_dir()
    schema = _load(chart / "values.schema.yaml")
    validator = jsonschema.Draft7Validator(schema)
    merged = helm_merge(_load(chart / "values.yaml"), values)
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(merged)]


def _bytes(quantity: str | int | float) -> float:
    match = re.fullmatch(r"([0-9.]+)([kMGT]i?|)", str(quantity))
    assert match, f"not a Kubernetes quantity: {quantity!r}"
    return float(match.group(1)) * _UNITS[match.group(2)]


@pytest.fixture(scope="module")
def values() -> dict:
    return _load(VALUES)


def test_the_schema_and_defaults_are_the_charts_own_unchanged():
    source = (_chart_dir() / "SOURCE.md").read_text()
    for name in ("values.schema.yaml", "values.yaml"):
        digest = hashlib.sha256((_chart_dir() / name).read_bytes()).hexdigest()
        assert f"`{name}` | `jupyterhub/{name}` | `{digest}`" in source, (
            f"{name} differs from the copy SOURCE.md records"
        )


def test_the_pinned_chart_version_is_the_one_validated_against():
    version = _chart_version()
    assert f"jupyterhub/jupyterhub {version}" in VALUES.read_text().splitlines()[0]
    readme = (REPO_DIR / "classroom" / "README.md").read_text()
    assert f"--version {version}" in readme, f"classroom/README.md's helm command must pin chart {version}"


def test_values_are_valid_for_the_chart(values):
    errors = _errors(values)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "path, wrong",
    [
        (("singleuser", "networkPolicy", "enabeld"), True),  # a misspelt key
        (("singleuser", "uid"), "1000"),  # a string where the chart wants an integer
        (("prePuller", "hook", "enabled"), "yes"),
        (("singleuser", "cpu", "limit"), "1 core"),
    ],
)
def test_the_schema_catches_a_wrong_value(values, path, wrong):
    broken = copy.deepcopy(values)
    node = broken
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = wrong
    assert _errors(broken), f"{'.'.join(path)}={wrong!r} passed the chart's schema"


def test_the_learner_runs_unprivileged_as_uid_1000(values):
    user = values["singleuser"]
    assert user["uid"] == 1000 and user["allowPrivilegeEscalation"] is False
    # The chart's iptables blocker is a privileged init container in every learner's pod.
    assert user["cloudMetadata"]["blockWithIptables"] is False
    spawner = values["hub"]["config"]["KubeSpawner"]
    context = spawner["container_security_context"]
    assert spawner["privileged"] is False and context["privileged"] is False and context["runAsNonRoot"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
    assert "privileged: true" not in VALUES.read_text()


def test_no_docker_socket_no_host_network_no_host_path(values):
    text = VALUES.read_text()
    for forbidden in ("docker.sock", "hostNetwork", "hostPID", "hostIPC", "hostPath", "hostPort"):
        assert forbidden not in text, f"{forbidden} in {VALUES.name}"
    assert "extraPodConfig" not in values["singleuser"]


def test_learners_pods_cannot_reach_each_other(values):
    policy = values["singleuser"]["networkPolicy"]
    assert policy["enabled"] is True
    # Egress: the chart's rules to the hub and proxy, and DNS; nothing else.
    rules = policy["egressAllowRules"]
    assert rules["privateIPs"] is False and rules["nonPrivateIPs"] is False and rules["cloudMetadataServer"] is False
    assert policy["egress"] == [] and policy["ingress"] == [] and policy["allowedIngressPorts"] == []
    assert policy["interNamespaceAccessLabels"] == "ignore"
    # Ingress comes only from pods with this label (hub, proxy): a learner's pod must not carry it.
    labels = helm_merge(_load(_chart_dir() / "values.yaml"), values)["singleuser"]["extraLabels"]
    assert labels.get("hub.jupyter.org/network-access-singleuser") != "true"


def test_the_image_is_pulled_ahead_by_both_pre_pullers(values):
    assert values["prePuller"]["hook"]["enabled"] is True
    assert values["prePuller"]["continuous"]["enabled"] is True


def test_the_image_is_the_labs_with_a_tag_to_replace_never_latest(values):
    image = values["singleuser"]["image"]
    assert image["name"] == "discovery-lab.invalid/jupyter"
    assert image["tag"] != "latest" and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", image["tag"])
    header = VALUES.read_text().split("\n\n", 1)[0]
    assert "name: discovery-lab.invalid/jupyter" in header and f"tag:  {image['tag']}" in header
    assert "compose/jupyter/Dockerfile" in header
    compose = (REPO_DIR / "compose" / "docker-compose.yml").read_text()
    assert f"image: {image['name']}:" in compose, "compose no longer names the learner's image as values.yaml does"


def test_idle_servers_are_culled(values):
    cull = values["cull"]
    assert cull["enabled"] is True and 0 < cull["every"] <= cull["timeout"]


def test_resources_cover_the_per_learner_targets(values):
    memory, cpu = values["singleuser"]["memory"], values["singleuser"]["cpu"]
    assert MEMORY_TARGET_BYTES <= _bytes(memory["guarantee"]) <= _bytes(memory["limit"])
    assert IDLE_CPU_TARGET <= cpu["guarantee"] <= cpu["limit"]
    assert VALUES.read_text().count("measured") >= 3, "each resource says what it was measured from"


def test_jupyterlab_opens_lesson_00_in_the_learners_copy(values):
    user = values["singleuser"]
    home = user["storage"]["homeMountPath"]
    assert values["hub"]["config"]["KubeSpawner"]["working_dir"] == home
    assert user["defaultUrl"] == f"/lab/tree/{FIRST_LESSON}"
    assert user["cmd"][-3:] == ["python3", "-m", "lab_services.classroom.singleuser"], "the hub's own learner start"


def test_the_state_directory_is_not_on_the_home_volume(values):
    env = values["singleuser"]["extraEnv"]
    assert env["LAB_BACKEND"] == "local"
    home = values["singleuser"]["storage"]["homeMountPath"]
    assert not Path(env["LAB_STATE_DIR"]).is_relative_to(home)
