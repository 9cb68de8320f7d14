"""Fixtures that start real lab servers on free loopback ports, and show their logs when a test fails."""

from __future__ import annotations

import functools
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pytest
from labs import ConsulNode, EtcdNode, consul_watcher, local_lab

from lab_services.runtime import Cluster, open_cluster, processes
from lab_services.runtime.config import ClusterConfig

# One state directory for the whole session, set before anything reads it, so notebook kernels and
# subprocesses started by tests find the same lab and never touch a developer's own `.lab/`.
_SESSION_STATE = Path(tempfile.mkdtemp(prefix="lab-test-state-"))
os.environ["LAB_STATE_DIR"] = str(_SESSION_STATE)


def _worker_port_block() -> None:
    """Under pytest-xdist (`make test` runs TEST_WORKERS, 2) each worker is a lab machine of its own: its own state
    directory (above), its own familiar ports (LAB_PORT_OFFSET) and its own slice of the free-port range
    (LAB_PORT_RANGE), so one worker never takes a port the other's killed server is about to restart on."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    n, count = int(worker[2:]), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    # Familiar ports (2379..9090, services from 5001) shift by 10000 or by whole 1000s: no two blocks overlap, and
    # none reaches 17000 + 2379, where the capstone tests put their own labs.
    os.environ["LAB_PORT_OFFSET"] = str((n % 2) * 10000 + (n // 2) * 1000)
    low, high = 27100, 32000
    size = (high - low) // count
    os.environ["LAB_PORT_RANGE"] = f"{low + n * size}-{low + (n + 1) * size - 1}"


_worker_port_block()


@pytest.fixture(scope="session", autouse=True)
def plain_ipython(tmp_path_factory) -> None:
    """Notebook tracebacks without colour codes, so a failing lesson reads plainly in the test log."""
    profile = tmp_path_factory.mktemp("ipython")
    (profile / "profile_default").mkdir()
    (profile / "profile_default" / "ipython_config.py").write_text('c.InteractiveShell.colors = "nocolor"\n')
    os.environ["IPYTHONDIR"] = str(profile)


# The compose runtime's tests need a Docker engine and one stack: `make test` runs them in a pytest run of their own
# (marker `compose`) beside the local runtime's, and within a run that has both they come last.
COMPOSE_MODULES = ("test_runtime_compose.py", "test_notebooks_compose.py", "test_classroom_docker.py")
# What starts real servers: these fixtures, or a module that builds a lab itself. `make test-fast` leaves them out.
LAB_FIXTURES = {"session_lab", "consul_node", "etcd_node", "stopped_server", "three_in_consul"}
LAB_BUILDERS = ("local_lab(", ".launch(", "LocalCluster(", "ComposeCluster(")
# The lessons, in three groups (test_notebooks.py: LESSON_GROUPS): queued first, so no long lesson is left to end a
# parallel run alone.
LESSON_MODULES = ("test_lessons_a.py", "test_lessons_b.py", "test_lessons_c.py")
_SESSION_LABS: list[Cluster] = []


@functools.cache
def _builds_labs(module: Path) -> bool:
    return any(builder in module.read_text() for builder in LAB_BUILDERS)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what needs a Docker engine (`compose`) or real servers (`servers`), before `-m` selects; then order the
    modules: the lesson groups first, the compose runtime's last (a stable sort: every module stays in one piece).

    The compose modules stop the local session lab first: on two cores, a second full lab (three Consul servers, three
    etcd members, Prometheus and three services, all idling with raft and gossip) beside the compose stack slowed the
    compose lessons' timed checkpoints enough to fail in CI, and nothing after them needs the local lab.
    """
    for item in items:
        if item.path.name in COMPOSE_MODULES:
            item.add_marker(pytest.mark.compose)
        if LAB_FIXTURES & set(item.fixturenames) or _builds_labs(item.path):
            item.add_marker(pytest.mark.servers)
    items.sort(key=lambda item: (item.path.name not in LESSON_MODULES) + 2 * (item.path.name in COMPOSE_MODULES))


FULL_LAB = ClusterConfig(consul_servers=3, etcd_members=3, services=3)


@pytest.fixture(scope="session")
def session_lab() -> Cluster:
    """The full lab (3 Consul servers, 3 etcd members, Prometheus, 3 services), one per pytest worker.

    The lessons run on it as a learner's kernel would: `ensure_cluster` grows it into the shape each lesson needs.
    """
    cluster = open_cluster(_SESSION_STATE, "local")
    cluster.launch(FULL_LAB)
    _SESSION_LABS.append(cluster)
    yield cluster
    cluster.down()
    leftovers = processes.live_records(_SESSION_STATE)
    assert not leftovers, f"the lab left processes behind after down: {leftovers}"


@pytest.fixture
def lab(session_lab: Cluster, request: pytest.FixtureRequest) -> Cluster:
    """The session's lab. The lessons run on it as they find it, as a learner's kernel would; any other test (the
    browser's lesson 00 too) gets it in the full shape, so what a lesson grew it into (client agents, a config store,
    a second datacenter) never depends on which lessons ran before it on this worker."""
    state = session_lab.published() or {}
    running = ClusterConfig(**state["status"]["config"]) if "status" in state else None
    if request.node.path.name not in LESSON_MODULES and running != FULL_LAB:
        session_lab.down()
        session_lab.launch(FULL_LAB)
    return session_lab


@pytest.fixture(scope="module")
def local_lab_down() -> None:
    """Stop the local session lab, if one runs, before a compose stack starts (the compose modules run last)."""
    for cluster in _SESSION_LABS:
        cluster.down()


@pytest.fixture(scope="module")
def consul_node(tmp_path_factory) -> ConsulNode:
    """One real Consul server for a module, started by the runtime (nothing else in that lab)."""
    with local_lab(
        tmp_path_factory.mktemp("consul"), consul_servers=1, etcd_members=0, services=0, prometheus=False
    ) as lab:
        yield ConsulNode(lab, "consul-1")


@pytest.fixture(scope="module")
def etcd_node(tmp_path_factory) -> EtcdNode:
    """One real etcd member for a module, started by the runtime (nothing else in that lab)."""
    with local_lab(
        tmp_path_factory.mktemp("etcd"), consul_servers=0, etcd_members=1, services=0, prometheus=False
    ) as lab:
        yield EtcdNode(lab, "etcd-1")


@pytest.fixture
def stopped_server(tmp_path):
    """`stopped_server("consul" | "etcd")`: a server the runtime started and stopped again; its address is known and
    nothing answers there yet, so a test can start a client first and the server later."""
    with ExitStack() as stack:

        def make(kind: str) -> ConsulNode | EtcdNode:
            shape = {"consul_servers": int(kind == "consul"), "etcd_members": int(kind == "etcd")}
            lab = stack.enter_context(local_lab(tmp_path, services=0, prometheus=False, **shape))
            node = (ConsulNode if kind == "consul" else EtcdNode)(lab, f"{kind}-1")
            node.stop()
            return node

        yield make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the tail of every lab server log to a failing test, as py-consul's fixtures do."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    roots = [_SESSION_STATE] + ([item.funcargs["tmp_path"]] if "tmp_path" in item.funcargs else [])
    # Module-scoped servers (a ConsulNode, an EtcdNode, a local lab) keep their logs in their own lab's base.
    roots += [lab.base for lab in (getattr(v, "lab", v) for v in item.funcargs.values()) if isinstance(lab, Cluster)]
    for log in [log for root in roots for log in sorted(root.glob("**/logs/*.log"))]:
        lines = log.read_text(errors="replace").splitlines()[-15:]
        report.sections.append((f"server log {log}", "\n".join(lines)))


@pytest.fixture(scope="module")
def three_in_consul(tmp_path_factory) -> Cluster:
    """One Consul server and three instances registered there only, for a module: what the streaming lessons, the
    lesson 07 widgets and the breaker picker run across."""
    with local_lab(
        tmp_path_factory.mktemp("three-in-consul"),
        consul_servers=1,
        etcd_members=0,
        services=3,
        prometheus=False,
        registry="consul",
    ) as lab:
        yield lab


@pytest.fixture()
def three_in_consul_watcher(three_in_consul):
    """A started watcher that already lists the three instances."""
    with consul_watcher(three_in_consul, ["user-1", "user-2", "user-3"]) as w:
        yield w
