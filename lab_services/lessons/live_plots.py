"""Lesson 08's live plots: calls per second and latency from Prometheus, redrawn while an instance is killed."""

from __future__ import annotations

import time
from typing import Any

from IPython.display import DisplayHandle

from lab_services.core.progress import OnStep
from lab_services.lessons.progress import ProgressBar
from lab_services.metrics import prometheus as prom
from lab_services.runtime.cluster import Cluster


def rate_and_latency(prom_url: str, marks: dict[str, float], seconds: float = 60, method: str = "CreateUser") -> Any:
    """A figure of the last `seconds`: calls per second per instance (left) and `method`'s latency quantiles (right),
    with a dashed line at each of `marks` ({label: Unix time})."""
    import matplotlib.pyplot as plt  # only lessons that plot pay for matplotlib (0.4 s of a kernel's start)

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.4))
    prom.plot_rate(prom_url, seconds=seconds, ax=left, marks=marks)
    prom.plot_latency(prom_url, seconds=seconds, method=method, ax=right, marks=marks)
    plt.close(fig)  # shown through a display handle only, not again at the end of the cell
    return fig


def plot_through_a_kill(
    prom_url: str,
    cluster: Cluster,
    victim: str,
    seconds: float,
    refresh: float,
    progress: OnStep | None = None,
) -> dict[str, float]:
    """Redraw `rate_and_latency` every `refresh` seconds for `seconds`, kill -9 `victim` once half way through (marked
    on the plots as "kill <victim>"), and return Prometheus's calls per second per instance at the end.

    It ends by itself, so a notebook run headless never blocks on it; `progress(done, total, step)` hears the seconds
    gone (a `ProgressBar("live plots")` by default). The caller starts `victim` again.
    """
    progress = progress or ProgressBar("live plots")
    marks: dict[str, float] = {}
    handle = DisplayHandle()
    handle.display(rate_and_latency(prom_url, marks))
    started = time.time()
    while time.time() - started < seconds:
        time.sleep(refresh)
        if not marks and time.time() - started >= seconds / 2:
            cluster.kill(victim)
            marks[f"kill {victim}"] = time.time()
        handle.update(rate_and_latency(prom_url, marks))
        step = f"killed {victim}" if marks else f"{victim} dies half way"
        progress(min(int(time.time() - started), int(seconds)), int(seconds), step)
    return prom.calls_per_second(prom_url)
