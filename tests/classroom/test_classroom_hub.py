"""A real JupyterHub with two learners, each a process of this machine (the local-process spawner): each learner's
kernel starts lesson 00's lab and passes its checker, neither sees nor stops the other's processes, and stopping
the hub leaves no learner process behind."""

from __future__ import annotations

import json

import psutil
import pytest
from browsers import CHROMIUM_ARGS, chromium_or_skip
from classroom_hub import LESSON_00_CHECKED

from lab_services.classroom.hub import Hub, HubError
from lab_services.classroom.remote_kernel import KernelError, RemoteKernel
from lab_services.classroom.settings import HubSettings
from lab_services.classroom.singleuser import FIRST_LESSON, copy_lessons
from lab_services.core.paths import REPO_DIR
from lab_services.core.wait import wait_until
from lab_services.runtime.local.cluster import LocalCluster

pytestmark = pytest.mark.servers

# Slots 5 and up: their ports (core/learner.py) meet neither the suite's workers' nor the compose run's.
LEARNERS = ("alice", "bob")
LESSON_00 = (
    LESSON_00_CHECKED
    + """
print(json.dumps({"pids": sorted(p.pid for p in status.processes), "consul": status.consul.http[0]}))
"""
)
STATUS = """
import json
from lab_services.runtime import open_cluster
print(json.dumps(sorted(p.pid for p in open_cluster().status().processes)))
"""


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    settings = HubSettings(tmp_path_factory.mktemp("hub"), port=18800, hub_port=18801, board_port=18803, first_slot=5)
    hub = Hub(settings).start()
    kernels = {}
    try:
        for name in LEARNERS:
            hub.add_learner(name)
            kernels[name] = RemoteKernel(hub.start_server(name), settings.api_token).start()
        yield hub, kernels
    finally:
        hub.stop()


@pytest.fixture(scope="module")
def first_engines(classroom):
    """Each learner's lab as their server started it, before any cell ran: its engine's pid."""
    hub, _ = classroom
    corners = {name: LocalCluster(hub.settings.data_dir / "learners" / name) for name in LEARNERS}
    wait_until(
        lambda: all(c.running() for c in corners.values()), 120, "each learner's server to start lesson 00's lab"
    )
    return {name: corner.support_pids()["engine"] for name, corner in corners.items()}


@pytest.fixture(scope="module")
def labs(classroom, first_engines):
    """Lesson 00's cell that starts the lab, and its checker, in each learner's own kernel."""
    _, kernels = classroom
    return {name: json.loads(kernel.execute(LESSON_00)) for name, kernel in kernels.items()}


def test_lesson_00_reuses_the_lab_the_learners_server_started_for_it(classroom, first_engines, labs):
    hub, _ = classroom
    for name in LEARNERS:
        engine = LocalCluster(hub.settings.data_dir / "learners" / name).support_pids()["engine"]
        assert engine == first_engines[name], f"{name}'s lesson 00 started a lab of its own instead of reusing it"


def test_each_learner_runs_lesson_00_and_passes_its_checker_in_their_own_lab(labs):
    alice, bob = labs["alice"], labs["bob"]
    assert alice["consul"] != bob["consul"], "two learners were given the same Consul"
    assert not set(alice["pids"]) & set(bob["pids"])


def test_each_learners_status_lists_only_their_own_processes(classroom, labs):
    _, kernels = classroom
    for name, kernel in kernels.items():
        assert json.loads(kernel.execute(STATUS)) == labs[name]["pids"]
        for pid in labs[name]["pids"]:
            assert psutil.Process(pid).environ().get("LAB_STATE_DIR", "").endswith(f"/learners/{name}"), (
                f"pid {pid} of {name}'s lab does not run in {name}'s corner"
            )


def test_an_error_in_a_learners_kernel_comes_back_in_its_own_words(classroom):
    _, kernels = classroom
    with pytest.raises(KernelError, match="ZeroDivisionError"):
        kernels["alice"].execute("1 / 0")


def test_a_learner_that_does_not_exist_is_named_by_the_hub(classroom):
    hub, _ = classroom
    with pytest.raises(HubError, match="404"):
        hub.start_server("nobody-here")


@pytest.mark.browser
def test_a_learner_logs_in_opens_lesson_00_and_their_consul_ui_through_the_hub(classroom, labs, tmp_path):
    """In Debian's chromium: the hub's login page with the learners' password, JupyterLab on lesson 00, then the
    learner's own Consul UI through JupyterLab's proxy, listing their lab's service."""
    from playwright.sync_api import sync_playwright

    hub, _ = classroom
    url = hub.settings.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_or_skip()), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{url}hub/login")
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", hub.settings.learner_password)
            page.click("input[type=submit], button[type=submit]")
            page.wait_for_url("**/user/alice/lab/**", timeout=60_000)
            # JupyterLab is up and has lesson 00 open: its notebook panel shows (its text renders later under load).
            page.locator(".jp-Notebook").first.wait_for(timeout=90_000)
            page.screenshot(path=tmp_path / "hub-lesson-00.png")
            page.goto(f"{url}user/alice/consul/ui/")
            page.get_by_text("user", exact=True).first.wait_for(timeout=60_000)
            page.screenshot(path=tmp_path / "hub-consul-ui.png")
        finally:
            browser.close()


def test_stopping_the_hub_leaves_no_learner_process_and_no_hub(classroom, labs):
    """Last in the module: the hub goes down here (the fixture's own stop then has nothing left to do)."""
    hub, _ = classroom
    hub_pid = int((hub.settings.data_dir / "jupyterhub.pid").read_text())
    hub.stop()
    assert not psutil.pid_exists(hub_pid)
    assert hub.learner_processes() == []
    for name, lab in labs.items():
        alive = [pid for pid in lab["pids"] if psutil.pid_exists(pid)]
        assert not alive, f"{name}'s lab left {alive} running after the hub stopped"


def test_a_learners_first_start_copies_the_lessons_and_a_restart_keeps_their_edits(tmp_path):
    first = copy_lessons(tmp_path)
    assert first[0] == FIRST_LESSON and len(first) == len(list((REPO_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    (tmp_path / FIRST_LESSON).write_text("the learner's answers")
    (tmp_path / first[1]).unlink()
    assert copy_lessons(tmp_path) == [first[1]], "only what is missing comes back"
    assert (tmp_path / FIRST_LESSON).read_text() == "the learner's answers"
