"""TrafficSplit: live bars of which instance answers each call, while buttons add, drain and kill instances.

split = TrafficSplit(PickerChannel(watcher), calls_per_second=50, cluster=cluster)
display(split.widget)
split.start(duration=30)            # drive calls in the background; stops by itself after 30 s
split.kill_button.click()           # kill -9 the instance chosen in split.instance_dropdown
split.policy_dropdown.value = "p2c" # the next call goes through a new channel with that policy
split.split()                       # {"user-1": 412, "user-2": 409, ...} since start (or reset())
split.close()                       # stop, and close the channels the widget built
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
import uuid
from typing import Any

import grpc
import ipywidgets as widgets

from lab_services.core.background import BackgroundThread
from lab_services.core.table import html_table
from lab_services.discovery import CanarySplit, PickerChannel, make_policy
from lab_services.discovery.policies import POLICIES
from lab_services.service import user_pb2, user_pb2_grpc

CANARY = "canary"
FAILED = "(failed)"
_BAR_COLOURS = {"v1": "#0969da", "v2": "#bf8700"}


class TrafficSplit(BackgroundThread):
    """Drives unary calls through a PickerChannel at `calls_per_second` and shows who served them.

    The bars show the share of each instance over the last `window` seconds, so a killed instance's bar
    falls to zero while its total stays. The driver thread only writes widget values (`bars`, `summary`,
    the instance list); the buttons and the dropdown act on the calling (kernel) thread. Changing the
    policy builds a new PickerChannel over the same watcher, swapped in between two calls.
    `cluster` (optional) is what the add, drain, kill and start buttons act on.
    """

    def __init__(
        self,
        channel: PickerChannel,
        calls_per_second: float = 50,
        cluster: Any = None,
        window: float = 2.0,
        redraw_every: float = 0.25,
    ):
        """Builds every widget of the panel as an attribute (a flat list of controls, long but without logic)."""
        if not isinstance(channel, PickerChannel):
            raise TypeError(
                f"invalid argument: channel: {type(channel).__name__}; pass a PickerChannel, "
                "e.g. PickerChannel(ConsulWatcher('user', consul_http))"
            )
        if not calls_per_second > 0:
            raise ValueError(f"invalid argument: calls_per_second: {calls_per_second!r}; use a rate above 0, e.g. 50")
        self.channel = channel
        self.watcher = channel.watcher
        self.cluster = cluster
        self.calls_per_second = float(calls_per_second)
        self.window = window
        self.redraw_every = redraw_every
        self.failures: list[str] = []
        self._t0 = time.monotonic()
        self._counts: collections.Counter[str] = collections.Counter()
        self._recent: collections.deque[tuple[float, str]] = collections.deque()
        self._versions: dict[str, str] = {}
        self._built: list[PickerChannel] = []
        self._lock = threading.Lock()  # counts and the current channel
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._numbers = itertools.count()
        self._run_id = uuid.uuid4().hex[:6]  # instances remember emails; each widget uses fresh ones

        policy = channel.policy
        self.policy_dropdown = widgets.Dropdown(
            options=[*POLICIES, CANARY],
            value=CANARY if isinstance(policy, CanarySplit) else policy.name,
            description="policy",
            layout=widgets.Layout(width="240px"),
        )
        self.canary_slider = widgets.FloatSlider(
            value=policy.canary_share if isinstance(policy, CanarySplit) else 0.1,
            min=0.0,
            max=1.0,
            step=0.05,
            description="canary share",
            readout_format=".0%",
            disabled=not isinstance(policy, CanarySplit),
            style={"description_width": "initial"},
        )
        self.instance_dropdown = widgets.Dropdown(description="instance", layout=widgets.Layout(width="240px"))
        self.add_version = widgets.Dropdown(
            options=["v1", "v2"], value="v1", description="version", layout=widgets.Layout(width="160px")
        )
        self.add_button = widgets.Button(
            description="add instance",
            button_style="success",
            icon="plus",
            tooltip="start one more instance of the chosen version",
        )
        self.drain_button = widgets.Button(
            description="drain",
            button_style="warning",
            icon="pause",
            tooltip="stop gracefully: NOT_SERVING, deregister, finish calls in flight",
        )
        self.kill_button = widgets.Button(
            description="kill -9",
            button_style="danger",
            icon="times",
            tooltip="SIGKILL, as a crash would; Consul notices at the next check",
        )
        self.start_button = widgets.Button(
            description="start", icon="play", tooltip="start a drained or killed instance again"
        )
        self.reset_button = widgets.Button(description="reset counts", icon="refresh")
        self.action = widgets.HTML()
        self.summary = widgets.HTML()
        self.bars = widgets.HTML()
        for button in (self.add_button, self.drain_button, self.kill_button, self.start_button):
            button.disabled = cluster is None
        self.add_button.on_click(lambda _: self.add_instance(self.add_version.value))
        self.drain_button.on_click(lambda _: self.drain(self.instance_dropdown.value))
        self.kill_button.on_click(lambda _: self.kill(self.instance_dropdown.value))
        self.start_button.on_click(lambda _: self.start_instance(self.instance_dropdown.value))
        self.reset_button.on_click(lambda _: self.reset())
        self.policy_dropdown.observe(self._on_policy, names="value")
        self.canary_slider.observe(self._on_share, names="value")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.policy_dropdown, self.canary_slider]),
                widgets.HBox([self.instance_dropdown, self.drain_button, self.kill_button, self.start_button]),
                widgets.HBox([self.add_version, self.add_button, self.reset_button]),
                self.action,
                self.summary,
                self.bars,
            ]
        )
        self.refresh_instances()
        self.redraw()

    # -- the calls -------------------------------------------------------------------------------------
    thread_name = "traffic-split"

    def start(self, duration: float | None = 30.0) -> TrafficSplit:
        """Drive calls in a background thread until `stop()`, or for `duration` seconds (None: until stopped)."""
        return super().start(duration)

    def close(self) -> None:
        """Stop, and close the channels this widget built (the one it was given stays the caller's to close)."""
        self.stop()
        for channel in self._built:
            channel.close()
        self._built.clear()

    def _run(self, until: float | None) -> None:
        interval = 1.0 / self.calls_per_second
        next_call = next_draw = time.monotonic()
        try:
            while self._keep_running(until):
                self.call_once()
                now = time.monotonic()
                if now >= next_draw:
                    self.redraw()
                    next_draw = now + self.redraw_every
                # Paced against a schedule rather than by sleeping a fixed time, so slow calls do not lower the rate.
                next_call = max(next_call + interval, now - 1.0)
                self._stopping.wait(max(0.0, next_call - time.monotonic()))
        finally:
            self.redraw(driving=False)

    def call_once(self) -> str:
        """One CreateUser call through the current channel; returns the instance that served it, or '(failed)'."""
        n = next(self._numbers)
        request = user_pb2.CreateUserRequest(name=f"split {n}", email=f"split-{self._run_id}-{n}@example.com")
        with self._lock:
            channel = self.channel
        try:
            served_by = user_pb2_grpc.UserServiceStub(channel).CreateUser(request, timeout=2.0).served_by
        except Exception as err:  # counted and shown; the driver keeps going whatever happens
            served_by = FAILED
            reason = (
                f"{err.code().name}: {err.details()}"
                if isinstance(err, grpc.RpcError)
                else f"{type(err).__name__}: {err}"
            )
            with self._lock:
                self.failures.append(reason)
        with self._lock:
            self._counts[served_by] += 1
            self._recent.append((time.monotonic(), served_by))
        return served_by

    # -- what was served -----------------------------------------------------------------------------------
    def split(self, window: float | None = None) -> dict[str, int]:
        """Calls per instance since start (or the last reset), or only in the last `window` seconds; '(failed)'
        counts failures."""
        with self._lock:
            if window is None:
                return dict(sorted(self._counts.items()))
            since = time.monotonic() - window
            return dict(sorted(collections.Counter(who for t, who in self._recent if t >= since).items()))

    def shares(self, window: float | None = None) -> dict[str, float]:
        """The split as fractions of all calls (failures included), e.g. {'user-1': 0.33, ...}."""
        counts = self.split(window)
        total = sum(counts.values())
        return {who: n / total for who, n in counts.items()} if total else {}

    def reset(self) -> None:
        """Start counting afresh (totals and the failure list)."""
        with self._lock:
            self._counts.clear()
            self._recent.clear()
            self.failures.clear()
        self.redraw()

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def redraw(self, driving: bool | None = None) -> None:
        """Draw the bars and the summary from the counts (called by the driver a few times per second)."""
        now = time.monotonic()
        with self._lock:
            while self._recent and self._recent[0][0] < now - max(self.window, 0.0):
                self._recent.popleft()
            recent = collections.Counter(who for _, who in self._recent)
            totals = dict(self._counts)
            failed = len(self.failures)
            policy = self.channel.policy
        for instance in self.watcher.instances():
            self._versions[instance.id] = instance.meta.get("version", "")
        listed = {i.id for i in self.watcher.instances()}
        names = sorted(set(totals) | listed, key=lambda n: (n == FAILED, n))
        in_window = sum(recent.values())
        rows = []
        for name in names:
            share = recent[name] / in_window if in_window else 0.0
            colour = "#cf222e" if name == FAILED else _BAR_COLOURS.get(self._versions.get(name, ""), "#57606a")
            bar = (
                f"<div style='background:{colour};height:12px;width:{300 * share:.0f}px;display:inline-block'></div>"
                f" {share:.0%}"
            )
            state = "" if name == FAILED else ("listed" if name in listed else "<i>not listed</i>")
            rows.append(
                {
                    "instance": name,
                    "version": self._versions.get(name, ""),
                    "registry": state,
                    f"last {self.window:g} s": bar,
                    "calls": totals.get(name, 0),
                }
            )
        self.bars.value = html_table(
            rows,
            ["instance", "version", "registry", f"last {self.window:g} s", "calls"],
            markup=("registry", f"last {self.window:g} s"),
        )
        if driving is None:
            driving = self.running and not self._stopping.is_set()
        state = "driving" if driving else "stopped"
        self.summary.value = (
            f"{state} · {self.calls_per_second:g} calls/s through <code>{policy!r}</code> · "
            f"{sum(totals.values())} calls, {failed} failed"
        )

    # -- the policy ---------------------------------------------------------------------------------------
    def set_policy(self, name: str) -> PickerChannel:
        """Swap in a new PickerChannel over the same watcher with policy `name` (or 'canary'); returns it."""
        policy = CanarySplit(canary_share=self.canary_slider.value) if name == CANARY else make_policy(name)
        with self._lock:
            old = self.channel
            self.channel = PickerChannel(self.watcher, policy=policy, retries=old.retries, eject_for=old.eject_for)
            self._built.append(self.channel)
            retired = old if old in self._built else None
            if retired is not None:
                self._built.remove(retired)
        if retired is not None:
            # A call may still be on it (taken before the swap); give it time to finish before closing.
            timer = threading.Timer(3.0, retired.close)
            timer.daemon = True
            timer.start()
        self.canary_slider.disabled = name != CANARY
        self.redraw()
        return self.channel

    def _on_policy(self, change: dict) -> None:
        if change["new"] != change["old"]:
            self.set_policy(change["new"])

    def _on_share(self, change: dict) -> None:
        with self._lock:
            policy = self.channel.policy
        if isinstance(policy, CanarySplit):
            # CanarySplit reads the share on every pick, so the next call already uses the new value.
            policy.canary_share = float(change["new"])
        self.redraw()

    # -- the instances ---------------------------------------------------------------------------------
    def refresh_instances(self) -> None:
        """List the lab's service instances with their state in the instance dropdown."""
        if self.cluster is None:
            names = [(i.id, i.id) for i in self.watcher.instances()]
        else:
            names = [(f"{s.id} ({s.version}, {s.state})", s.id) for s in self.cluster.status().services]
        current = self.instance_dropdown.value
        self.instance_dropdown.options = names
        if current in [value for _, value in names]:
            self.instance_dropdown.value = current

    def _act(self, verb: str, action, name: str | None) -> dict[str, Any]:
        if self.cluster is None:
            raise RuntimeError(
                "this TrafficSplit has no cluster; pass cluster=... to add, drain, kill or start instances"
            )
        self.action.value = f"{verb} {name or ''}…"
        started = time.monotonic()
        try:
            result = action()
        except Exception as err:
            self.action.value = f"<span style='color:#cf222e'>{verb} {name or ''} failed: {err}</span>"
            raise
        self.action.value = f"{verb} {result.get('name', name)}: done in {time.monotonic() - started:.2f} s"
        self.refresh_instances()
        return result

    def add_instance(self, version: str = "v1") -> dict[str, Any]:
        """Start one more instance (e.g. a v2 canary); returns once it passes its health check."""
        return self._act(f"adding a {version} instance", lambda: self.cluster.add_service(version=version), None)

    def drain(self, name: str) -> dict[str, Any]:
        """Stop `name` gracefully: it reports NOT_SERVING, deregisters, then lets calls in flight finish."""
        return self._act("draining", lambda: self.cluster.stop(name), name)

    def kill(self, name: str) -> dict[str, Any]:
        """SIGKILL `name`: no goodbye; discovery notices only when the health check fails."""
        return self._act("killing", lambda: self.cluster.kill(name), name)

    def start_instance(self, name: str) -> dict[str, Any]:
        """Start a drained or killed instance again, same address; returns once it is ready."""
        return self._act("starting", lambda: self.cluster.start(name), name)
