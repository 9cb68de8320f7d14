"""LabDashboard: the whole lab live on one screen, with buttons that kill, stop, start, pause and resume real processes.

dashboard = LabDashboard(cluster).start()     # redraws every 2 s in the background
dashboard                                      # display it
dashboard.buttons("user-2")["kill"].click()    # what the kill button of user-2 does: SIGKILL, then a redraw
dashboard.reset_button.click()                 # the instructor's reset: everything back to the lab's clean shape
dashboard.add_panel(split_panel, "Live call split")   # a lesson's own widget below the dashboard
dashboard.stop()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from html import escape
from typing import Any, TypeVar

import consul
import ipywidgets as widgets

from lab_services.core.background import BackgroundThread
from lab_services.core.table import html_table
from lab_services.lessons import exercises
from lab_services.lessons.widgets.cluster_overview import overview_rows, summary_html
from lab_services.lessons.widgets.health_board import COLOURS
from lab_services.registry.consul_health import CheckState, ConsulHealth
from lab_services.runtime.cluster import Cluster
from lab_services.runtime.status import ClusterStatus

ACTIONS = ("kill", "stop", "start", "pause", "resume")
# The buttons that make sense in each state: a stopped process can only be started, a paused one resumed
# (or killed or stopped, which continue it first), a running one disturbed in any of three ways.
ENABLED = {"running": {"kill", "stop", "pause"}, "paused": {"kill", "stop", "resume"}, "stopped": {"start"}}
TOOLTIPS = {
    "kill": "SIGKILL, as a crash would: no goodbye, a service stays registered until its checks fail",
    "stop": "SIGTERM and wait: the graceful path, a service deregisters first",
    "start": "start it again with the same ports and data, and wait until it is ready",
    "pause": "SIGSTOP: alive but hung, which only timeouts notice",
    "resume": "SIGCONT: carry on where it stopped",
}
STYLES = {"kill": "danger", "stop": "warning", "start": "success", "pause": "", "resume": "info"}
STATE_COLOURS = {"running": COLOURS["passing"], "paused": COLOURS["warning"], "stopped": COLOURS["critical"]}
SEVERITY = ("passing", "warning", "critical")  # a service on a node shows its worst check
T = TypeVar("T")


class ProcessRow:
    """One lab process: what it is (leader marked with ★), its state, and its five buttons.

    Every widget carries a CSS class named after the process (`lab-kill-user-2`, `lab-state-user-2`), so a
    browser test can find it.
    """

    def __init__(self, name: str, act: Callable[[str, str], Any]):
        self.name = name
        self.info = widgets.HTML(layout=widgets.Layout(width="560px"))
        self.state = widgets.HTML(layout=widgets.Layout(width="80px"))
        self.state.add_class(f"lab-state-{name}")
        self.buttons: dict[str, widgets.Button] = {}
        for action in ACTIONS:
            button = widgets.Button(
                description=action,
                tooltip=f"{action} {name}: {TOOLTIPS[action]}",
                button_style=STYLES[action],
                layout=widgets.Layout(width="78px"),
            )
            button.add_class(f"lab-{action}-{name}")
            button.on_click(lambda _, action=action: act(action, name))
            self.buttons[action] = button
        self.widget = widgets.HBox([self.info, self.state, *self.buttons.values()])
        self.widget.add_class(f"lab-row-{name}")

    def show(self, row: dict[str, Any], busy: bool) -> None:
        """Redraw from an overview row; while any action runs, every button waits."""
        cells = [
            (f"<b>{escape(row['name'])}</b> {'★' if row['leader'] else ''}", 110),
            (row["role"], 110),
            (row["address"], 150),
            (f"pid {row['pid']}" if row["pid"] else "no pid", 80),
            (row["version"], 90),
            *([(f"container {row['container']}", 170)] if row.get("container") else []),
        ]
        self.info.value = "".join(
            f"<span style='display:inline-block;width:{w}px'>{c if i == 0 else escape(str(c))}</span>"
            for i, (c, w) in enumerate(cells)
        )
        self.state.value = f"<b style='color:{STATE_COLOURS.get(row['state'], '#000')}'>{row['state']}</b>"
        allowed = set() if busy else ENABLED.get(row["state"], set())
        for action, button in self.buttons.items():
            button.disabled = action not in allowed


class LabDashboard(BackgroundThread):
    """Nodes and leaders, service instances with each Consul check, per-process buttons, and an instructor row;
    with client agents, a table of Consul's nodes with the services registered on each (`node_rows`).

    `refresh()` asks the cluster and Consul again and redraws; `start()` does it every `refresh_every` seconds
    in a background thread, which only writes widget values. Buttons act on the real processes through the
    cluster and redraw at once. Rows for processes added later (a canary) appear at the next `refresh()` from
    the notebook (or the Refresh button): the background thread does not create widgets.
    """

    def __init__(self, cluster: Cluster, refresh_every: float = 2.0):
        self.cluster = cluster
        self.refresh_every = refresh_every
        self.status: ClusterStatus | None = None
        self.rows: list[dict[str, Any]] = []
        self.checks: dict[str, list[CheckState]] | None = {}  # None while no Consul server answers
        self.updated = ""
        self.process_rows: dict[str, ProcessRow] = {}
        self._owner = threading.current_thread()
        self._lock = threading.RLock()
        self._busy = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._consul: dict[str, ConsulHealth] = {}

        self.refresh_button = widgets.Button(
            description="Refresh", icon="refresh", tooltip="ask the cluster and Consul again"
        )
        self.refresh_button.on_click(lambda _: self.refresh())
        self.last_update = widgets.HTML()
        self.last_update.add_class("lab-last-update")
        self.summary = widgets.HTML()
        self.controls = widgets.VBox()
        self.services = widgets.HTML()
        self.node_rows: list[dict[str, Any]] = []
        self.nodes = widgets.HTML()
        self.nodes.add_class("lab-nodes")
        # Shown only when the lab runs client agents (lesson 12 on): then nodes differ from the servers.
        self.nodes_section = widgets.VBox(
            [
                widgets.HTML("<b>Nodes</b> (each Consul agent: its gossip health and the services registered with it)"),
                self.nodes,
            ],
            layout=widgets.Layout(display="none"),
        )
        self.message = widgets.HTML()
        self.message.add_class("lab-message")
        self.reset_button = widgets.Button(
            description="Reset lab",
            icon="undo",
            button_style="warning",
            tooltip="resume what is paused, start what is stopped, stop instances added since up",
        )
        self.reset_button.add_class("lab-reset")
        self.reset_button.on_click(lambda _: self.reset())
        self.reveal_toggle = widgets.ToggleButton(
            value=exercises.solutions_revealed(),
            description="Reveal solutions",
            icon="eye",
            tooltip="every exercises.check(...) shows one solution",
        )
        self.reveal_toggle.observe(self._on_reveal, names="value")
        self.panels = widgets.VBox()
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.refresh_button, self.last_update]),
                self.summary,
                widgets.HTML("<b>Processes</b> (★ the current Raft leader)"),
                self.controls,
                self.message,
                widgets.HTML("<b>Service instances</b> (checks as the Consul catalog sees them)"),
                self.services,
                self.nodes_section,
                widgets.HBox(
                    [
                        widgets.HTML("<b>Instructor</b>&nbsp;", layout=widgets.Layout(width="90px")),
                        self.reset_button,
                        self.reveal_toggle,
                    ]
                ),
                self.panels,
            ]
        )
        self.widget.add_class("lab-dashboard")
        self.refresh()

    # -- reading and drawing ---------------------------------------------------------------------------
    def refresh(self) -> list[dict[str, Any]]:
        """Ask the cluster and Consul, redraw everything, and return the process rows."""
        with self._lock:
            self.updated = time.strftime("%H:%M:%S")
            try:
                status = self.cluster.status()
            except Exception as err:  # a lab restarting or down is worth showing; the next refresh may find it back
                self.summary.value = (
                    f"<b style='color:{COLOURS['critical']}'>the lab did not answer: {escape(str(err))}</b>"
                )
                self._show_last_update()
                return self.rows
            self.status = status
            self.checks = self._read_checks(status)
            self.rows = overview_rows(status)
            self._draw_rows()
            new = [row["name"] for row in self.rows if row["name"] not in self.process_rows]
            self.summary.value = summary_html(status, self.rows) + (
                f" &nbsp;·&nbsp; new: {escape(', '.join(new))} (press Refresh for their buttons)" if new else ""
            )
            self.services.value = self._services_table(status)
            self._show_nodes(status)
            self._show_last_update()
            return self.rows

    def _draw_rows(self) -> None:
        names = [row["name"] for row in self.rows]
        if names != list(self.process_rows) and threading.current_thread() is self._owner:
            self.process_rows = {name: self.process_rows.get(name) or ProcessRow(name, self.act) for name in names}
            self.controls.children = [r.widget for r in self.process_rows.values()]
        for row in self.rows:
            if row["name"] in self.process_rows:
                self.process_rows[row["name"]].show(row, self._busy)

    def _ask_consul(self, status: ClusterStatus, ask: Callable[[consul.Consul], T]) -> T | None:
        """`ask(client)` of the first running Consul server that answers; None if none does."""
        consul_names = [p.name for p in status.processes if p.kind == "consul"]
        states = {p.name: p.state for p in status.processes}
        for name, address in zip(consul_names, status.consul.http, strict=False):
            if states.get(name) != "running":
                continue
            if address not in self._consul:
                self._consul[address] = ConsulHealth(address, request_timeout=1.0)
            try:
                return ask(self._consul[address].client)
            except Exception:  # this server is electing or shutting down; another one may answer
                continue
        return None

    def _read_checks(self, status: ClusterStatus) -> dict[str, list[CheckState]] | None:
        """{service_id: its checks} from the catalog of the first running Consul server that answers; None if none
        does."""

        def checks(client: consul.Consul) -> dict[str, list[CheckState]]:
            found: dict[str, list[CheckState]] = {}
            for check in map(CheckState.from_api, client.health.state("any")[1]):
                if check.service_id:
                    found.setdefault(check.service_id, []).append(check)
            return found

        return self._ask_consul(status, checks)

    def _read_nodes(self, status: ClusterStatus) -> list[dict[str, Any]] | None:
        """One row per node in the catalog (/v1/catalog/nodes): its agent (server or client) and that process's
        state, its gossip health (serfHealth), and each service registered with it at its worst check, its node's
        included (/v1/health/node/<node>). None when no Consul server answers."""
        processes = {p.name: p for p in status.processes}

        def nodes(client: consul.Consul) -> list[dict[str, Any]]:
            rows = []
            for node in client.catalog.nodes()[1]:
                checks = client.health.node(node["Node"])[1]
                # A node's own checks (serfHealth) count for every service on it, as in /v1/health/service?passing:
                # a service whose agent is gone keeps its last "passing" check, yet is no longer listed.
                node_worst = max(
                    (c["Status"] for c in checks if not c["ServiceID"]), default="passing", key=SEVERITY.index
                )
                services: dict[str, str] = {}
                for check in checks:
                    if check["ServiceID"]:
                        services[check["ServiceID"]] = max(
                            services.get(check["ServiceID"], node_worst), check["Status"], key=SEVERITY.index
                        )
                process = processes.get(node["Node"])
                rows.append(
                    {
                        "node": node["Node"],
                        "address": node["Address"],
                        "agent": {"consul": "server", "consul-client": "client"}.get(
                            process.kind if process else "", "?"
                        ),
                        "process": process.state if process else "not a lab process",
                        "gossip": next(
                            (c["Status"] for c in checks if c["CheckID"] == "serfHealth"), "no serfHealth check"
                        ),
                        "services": dict(sorted(services.items())),
                    }
                )
            return rows

        return self._ask_consul(status, nodes)

    def _show_nodes(self, status: ClusterStatus) -> None:
        """The nodes table, when the lab runs client agents; hidden otherwise."""
        if not status.consul.clients:
            self.node_rows, self.nodes_section.layout.display = [], "none"
            return
        self.nodes_section.layout.display = None
        found = self._read_nodes(status)
        if found is None:
            self.nodes.value = f"<span style='color:{COLOURS['gone']}'>no Consul server answered</span>"
            return
        self.node_rows = found

        def coloured(state: str, colours: dict[str, str]) -> str:
            return f"<b style='color:{colours.get(state, '#000')}'>{escape(state)}</b>"

        self.nodes.value = html_table(
            [
                {
                    **row,
                    "process": coloured(row["process"], STATE_COLOURS),
                    "gossip": coloured(row["gossip"], COLOURS),
                    "services": " &nbsp;".join(
                        f"{escape(sid)} {coloured(state, COLOURS)}" for sid, state in row["services"].items()
                    )
                    or f"<span style='color:{COLOURS['gone']}'>none</span>",
                }
                for row in found
            ],
            ["node", "address", "agent", "process", "gossip", "services"],
            markup=("process", "gossip", "services"),
        )

    def _services_table(self, status: ClusterStatus) -> str:
        rows = []
        for service in status.services:
            checks = sorted((self.checks or {}).get(service.id, []), key=lambda c: c.check_id)
            prefix = f"service:{service.id}:"
            cell = " &nbsp;".join(
                f"{escape(c.check_id.removeprefix(prefix))} "
                f"<b style='color:{COLOURS.get(c.status, '#000')}'>{c.status}</b>"
                for c in checks
            )
            rows.append(
                {
                    "instance": service.id,
                    "version": service.version,
                    "address": service.address,
                    "process": f"<b style='color:{STATE_COLOURS.get(service.state, '#000')}'>{service.state}</b>",
                    "Consul checks": cell
                    or f"<span style='color:{COLOURS['gone']}'>"
                    f"{'not registered' if self.checks is not None else 'no Consul server answered'}</span>",
                }
            )
        return html_table(
            rows, ["instance", "version", "address", "process", "Consul checks"], markup=("process", "Consul checks")
        )

    def _show_last_update(self, running: bool | None = None) -> None:
        running = self.running if running is None else running
        every = (
            f"refreshing every {self.refresh_every:g} s"
            if running
            else "not refreshing (press Refresh, or call start())"
        )
        self.last_update.value = f"&nbsp; last update {self.updated} &nbsp;·&nbsp; {every}"

    def _say(self, text: str, error: bool = False) -> None:
        colour = COLOURS["critical"] if error else "#000"
        self.message.value = f"<span style='color:{colour}'>{escape(text)}</span>"

    # -- acting on processes ---------------------------------------------------------------------------
    def buttons(self, name: str) -> dict[str, widgets.Button]:
        """The five buttons of process `name` (kill, stop, start, pause, resume)."""
        if name not in self.process_rows:
            raise KeyError(f"no process named {name!r} on the dashboard; it shows {', '.join(self.process_rows)}")
        return self.process_rows[name].buttons

    def act(self, action: str, name: str) -> dict[str, Any] | None:
        """What a row's button does: `cluster.<action>(name)`, say what happened, redraw. None if it failed."""
        with self._lock:
            self._busy = True
            self._say(f"{action} {name}: working...")
            self._draw_rows()
        try:
            result = getattr(self.cluster, action)(name)
        except Exception as err:
            self._say(f"{action} {name} failed: {err}", error=True)
            result = None
        else:
            self._say(_describe(action, name, result))
        finally:
            self._busy = False
            self.refresh()
        return result

    def reset(self) -> list[str]:
        """Bring the lab back to its clean shape and say what that took; returns the steps done.

        The runtime's `reset()` resumes paused processes, starts stopped ones together (so a Consul or
        etcd group that lost its quorum can elect again), and removes instances added since `up`.
        """
        with self._lock:
            self._busy = True
            self._say("reset: working...")
            self._draw_rows()
        done, failed = [], []
        try:
            done = self.cluster.reset()
        except Exception as err:
            failed.append(str(err))
        finally:
            self._busy = False
        if failed:
            self._say("reset did " + (", ".join(done) or "nothing") + "; failed: " + "; ".join(failed), error=True)
        elif done:
            self._say("reset: " + ", ".join(done) + ". The lab is back to its clean shape.")
        else:
            self._say("reset: nothing to do, every process runs and no instance was added.")
        self.refresh()
        return done

    def _on_reveal(self, change: dict[str, Any]) -> None:
        exercises.reveal_solutions(change["new"])
        self._say(
            "solutions revealed: every exercises.check(...) now shows one solution"
            if change["new"]
            else "solutions hidden"
        )

    # -- lessons' own panels ---------------------------------------------------------------------------
    def add_panel(self, panel: Any, title: str | None = None) -> Any:
        """Show a lesson's widget (or plain widget class with `.widget`) below the dashboard; returns it."""
        widget = getattr(panel, "widget", panel)
        header = [widgets.HTML(f"<b>{escape(title)}</b>")] if title else []
        self.panels.children = (*self.panels.children, *header, widget)
        return panel

    # -- the refresh thread ----------------------------------------------------------------------------
    thread_name = "lab-dashboard"

    def _started(self) -> None:
        self._show_last_update()

    def _run(self, until: float | None) -> None:
        try:
            while self._keep_running(until):
                self.refresh()
                self._stopping.wait(self.refresh_every)
        finally:
            self._show_last_update(running=False)

    def stop(self) -> None:
        """End the refresh thread and wait for it; safe to call twice. The buttons keep working."""
        super().stop()
        with self._lock:
            for health in self._consul.values():
                health.close()
            self._consul.clear()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _describe(action: str, name: str, result: dict[str, Any]) -> str:
    pid = result.get("pid")
    if action == "start":
        if result.get("already_running"):
            return f"{name} was already running (pid {pid})"
        return f"started {name} (pid {pid}), ready in {result.get('seconds_to_ready', '?')} s"
    if action == "stop":
        return f"stopped {name} (pid {pid}, exit code {result.get('exit_code')})"
    return {"kill": "killed", "pause": "paused", "resume": "resumed"}[action] + f" {name} (pid {pid})"
