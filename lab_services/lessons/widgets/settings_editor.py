"""SettingsEditor: write a runtime setting to Consul KV or etcd, and watch every instance's effective settings live.

editor = SettingsEditor({"consul": consul_store, "etcd": etcd_store}, instances)
display(editor.widget)
editor.write("latency_ms", "200", store="consul")   # what the button does; returns the message it shows
editor.start(duration=60)                           # refresh the table twice a second; stops by itself
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import ipywidgets as widgets

from lab_services.core.background import BackgroundThread
from lab_services.core.table import html_table
from lab_services.lessons.config_centre import settings_table
from lab_services.service import AdminClient
from lab_services.service.config_store import ConfigStore
from lab_services.service.settings import SCHEMA, InvalidSetting, validate


class SettingsEditor(BackgroundThread):
    """A key, a value and a store to write to (validated first, as `discovery-lab config set` does), over a live
    table."""

    thread_name = "settings-editor"

    def __init__(self, stores: Mapping[str, ConfigStore], instances: Mapping[str, AdminClient], tick: float = 0.5):
        if not stores:
            raise ValueError("invalid argument: stores: empty; pass {'consul': store, 'etcd': store}")
        self.stores = dict(stores)
        self.instances = dict(instances)
        self.tick = tick
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.key = widgets.Dropdown(options=sorted(SCHEMA), value="greeting", description="setting")
        self.value = widgets.Text(value="hello from the editor", description="value")
        self.store = widgets.ToggleButtons(options=list(self.stores), description="store")
        self.write_button = widgets.Button(description="write", button_style="primary")
        self.message = widgets.HTML()
        self.table = widgets.HTML()
        self.write_button.on_click(lambda _: self.write(self.key.value, self.value.value, self.store.value))
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.key, self.value]),
                widgets.HBox([self.store, self.write_button]),
                self.message,
                self.table,
            ]
        )
        self.refresh()

    def write(self, key: str, value: str, store: str | None = None) -> str:
        """Validate and write; the message says the revision, or what is wrong (nothing is written then)."""
        target = self.stores[store or self.store.value]
        try:
            validate(key, value)
            revision = target.put(key, value)
            text = f"wrote {key} = {value!r} to {target.kind} at revision {revision}"
        except (InvalidSetting, OSError) as err:
            text = f"not written: {err}"
        self.message.value = f"<code>{text}</code>"
        return text

    def refresh(self) -> None:
        self.table.value = html_table(settings_table(self.instances).rows)

    def _run(self, until: float | None) -> None:
        while self._keep_running(until):
            self.refresh()
            self._stopping.wait(self.tick)
