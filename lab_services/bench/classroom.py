"""A classroom at once: N learners log in together, each kernel runs lesson 00's cluster start, and the benchmark
times login to lesson 00's lab passing, then measures what each learner costs while idle and how long the hub
takes to stop everything. What it measures is what the capacity table in docs/instructor/ is made from."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import psutil

from lab_services.classroom import spawning
from lab_services.classroom.hub import Hub
from lab_services.classroom.remote_kernel import RemoteKernel
from lab_services.classroom.settings import HubSettings
from lab_services.core.progress import OnStep

# Lesson 00's first cells, as its notebook runs them: the lab in the lesson's shape, then its status.
LESSON_00 = """
import json
from lab_services import lessons as lab
cluster = lab.ensure_cluster(consul_servers=1, etcd_members=1, services=2)
print(json.dumps(sorted(p.pid for p in cluster.status().processes)))
"""
# Idle is measured once the logins have settled: right after the last lab passes, the other learners' servers,
# kernels and labs are still finishing their own start (first scrapes, Consul's first syncs), which is not idle.
# What the first seconds cost is reported too (`idle_cpu_percent_first_window`).
SETTLE_SECONDS = 10.0
IDLE_SECONDS = 20.0
# What each process of a learner is, for the breakdown of where idle CPU goes: the servers by their program's name,
# Python processes by what their command line runs.
SERVERS = ("consul", "etcd", "prometheus")
PYTHON_KINDS = (
    ("lab_services.service", "user service"),
    ("lab_services.runtime.local.engine", "lab engine"),
    ("ipykernel", "kernel"),
    ("lab_services.classroom.singleuser", "jupyter server"),
    ("tini", "tini"),
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _one_learner(hub: Hub, name: str) -> dict[str, Any]:
    started = time.monotonic()
    hub.add_learner(name)
    kernel = RemoteKernel(hub.start_server(name, timeout=300), hub.settings.api_token).start()
    pids = json.loads(kernel.execute(LESSON_00, timeout=300))
    return {"name": name, "seconds_to_passing": time.monotonic() - started, "lab_pids": pids}


def _learner_pids(hub: Hub, name: str) -> list[int]:
    """Every host pid of one learner: their container's processes, or the processes in their corner."""
    if hub.settings.spawner == "docker":
        container = docker.from_env().containers.get(f"{spawning.LEARNER_PREFIX}{name}")
        return [int(row[1]) for row in container.top(ps_args="-eo user,pid")["Processes"]]
    corner = str(hub.settings.data_dir / "learners" / name)
    return [p.pid for p in hub.learner_processes() if p.environ().get("LAB_STATE_DIR") == corner]


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    seconds = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        seconds[pid] = times.user + times.system
    return seconds


def _kind(pid: int) -> str:
    try:
        line = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return "gone"
    program = line.split(" ", 1)[0].rsplit("/", 1)[-1]
    if program in SERVERS:
        return program
    return next((kind for marker, kind in PYTHON_KINDS if marker in line), program or "other")


def _idle_percent(pids: dict[str, list[int]], seconds: float) -> tuple[list[float], dict[str, float]]:
    """Each learner's share of a core over `seconds`, and the mean per learner of each kind of process."""
    before = {n: _cpu_by_pid(p) for n, p in pids.items()}
    time.sleep(seconds)
    per_learner, by_kind = [], {}
    for name, learner_pids in pids.items():
        after = _cpu_by_pid(learner_pids)
        used = {pid: after[pid] - before[name].get(pid, 0.0) for pid in after}
        per_learner.append(100 * sum(used.values()) / seconds)
        for pid, cpu in used.items():
            kind = _kind(pid)
            by_kind[kind] = by_kind.get(kind, 0.0) + 100 * cpu / seconds / len(pids)
    return per_learner, {k: round(v, 2) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])}


def _cross_learner(hub: Hub, learners: list[dict[str, Any]], pids: dict[str, list[int]]) -> int:
    """Processes in one learner's lab status that belong to another learner (0 when every lab is its own)."""
    return sum(
        1
        for learner in learners
        for pid in learner["lab_pids"]
        for other, theirs in pids.items()
        if other != learner["name"] and pid in theirs
    )


def run(learners: int = 5, spawner: str = "local", image: str = "", progress: OnStep | None = None) -> dict[str, Any]:
    """One classroom of `learners` on this machine, from nothing to everything stopped."""
    step = progress or (lambda done, total, what: None)
    with tempfile.TemporaryDirectory(prefix="lab-bench-classroom-") as tmp:
        settings = HubSettings(Path(tmp), port=18900, hub_port=18901, board_port=18903, spawner=spawner, first_slot=20)
        if image:
            settings.image, settings.mount_checkout = image, image.endswith(":ci")
        hub = Hub(settings).start()
        try:
            step(0, 3, f"{learners} learners logging in at once")
            names = [f"learner{i}" for i in range(1, learners + 1)]
            with ThreadPoolExecutor(max_workers=learners) as pool:
                done = list(pool.map(lambda n: _one_learner(hub, n), names))
            step(1, 3, f"every lab passing; {SETTLE_SECONDS:.0f} s to settle, then {IDLE_SECONDS:.0f} s of idle")
            pids = {n: _learner_pids(hub, n) for n in names}
            first, _ = _idle_percent(pids, SETTLE_SECONDS)
            idle, by_kind = _idle_percent(pids, IDLE_SECONDS)
            rss = [_rss_mb(pids[n]) for n in names]
            cross = _cross_learner(hub, done, pids)
            step(2, 3, "stopping the hub and every learner")
            stop_started = time.monotonic()
        finally:
            hub.stop()
        stopped = time.monotonic() - stop_started
        left = len(hub.learner_processes())
    seconds = [d["seconds_to_passing"] for d in done]
    step(3, 3, "done")
    return {
        "learners": learners,
        "spawner": spawner,
        "cores": psutil.cpu_count(),
        "p50_seconds_to_passing": round(statistics.median(seconds), 2),
        "p95_seconds_to_passing": round(_percentile(seconds, 0.95), 2),
        "rss_mb_per_learner": round(statistics.mean(rss), 1),
        "max_rss_mb_per_learner": round(max(rss), 1),
        "idle_cpu_percent_per_learner": round(statistics.mean(idle), 2),
        "idle_cpu_percent_first_window": round(statistics.mean(first), 2),
        "idle_cpu_percent_by_kind": by_kind,
        "seconds_to_stop_all": round(stopped, 2),
        "cross_learner_processes": cross,
        "processes_left_after_stop": left,
    }


def describe(result: dict[str, Any]) -> str:
    return (
        f"classroom of {result['learners']} ({result['spawner']} spawner, {result['cores']} cores): login to lesson "
        f"00's lab passing p50 {result['p50_seconds_to_passing']} s, p95 {result['p95_seconds_to_passing']} s; "
        f"per learner {result['rss_mb_per_learner']} MB resident (max {result['max_rss_mb_per_learner']}), "
        f"{result['idle_cpu_percent_per_learner']} % of a core idle ({result['idle_cpu_percent_first_window']} % in "
        f"the {SETTLE_SECONDS:.0f} s after the logins; by process: "
        + ", ".join(f"{k} {v}" for k, v in result["idle_cpu_percent_by_kind"].items())
        + f"); everything stopped in "
        f"{result['seconds_to_stop_all']} s; {result['cross_learner_processes']} cross-learner processes, "
        f"{result['processes_left_after_stop']} left after stop"
    )
