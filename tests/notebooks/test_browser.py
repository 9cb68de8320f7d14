"""Lesson 00 in a real browser: JupyterLab runs it all; the dashboard's buttons kill and restart a real instance."""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from browsers import CHROMIUM_ARGS, chromium_or_skip

from lab_services.core.http import http_get
from lab_services.core.paths import REPO_DIR
from lab_services.core.ports import PortAllocator
from lab_services.core.wait import wait_until
from lab_services.runtime import processes

# No news pop-up over the notebook, and every cell attached to the page so the dashboard is always in the DOM.
OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}
LESSON = "00_welcome_and_setup.ipynb"
INSTANCE = "user-2"
ARTIFACTS = REPO_DIR / "test-artifacts"

# Resolves once JupyterLab has the notebook open with its context and session ready and the kernel
# connected and idle: a Run All sent before that is silently dropped.
WAIT_FOR_NOTEBOOK = """async (path) => {
  const app = window.jupyterapp;
  await app.started;
  await app.restored;
  const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
  const deadline = Date.now() + 90000;
  let panel;
  while (!(panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path))) {
    if (Date.now() > deadline) throw new Error('JupyterLab never opened ' + path);
    await sleep(100);
  }
  await panel.context.ready;
  await panel.sessionContext.ready;
  for (;;) {
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    if (kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle') {
      app.shell.activateById(panel.id);
      return kernel.id;
    }
    if (Date.now() > deadline) {
      throw new Error('the kernel is ' + (kernel ? kernel.connectionStatus + ' and ' + kernel.status : 'not started'));
    }
    await sleep(100);
  }
}"""

# Truthy once every code cell has run and the kernel is idle again, or as soon as a cell failed.
RUN_ALL_FINISHED = """(path) => {
  const panel = Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.context && w.context.path === path);
  const cells = panel.content.widgets.filter(cell => cell.model.type === 'code');
  const errors = cells.flatMap(cell => cell.model.outputs.toJSON())
    .filter(output => output.output_type === 'error').map(output => output.ename + ': ' + output.evalue);
  if (errors.length) return {errors};
  const kernel = panel.sessionContext.session.kernel;
  const ran = cells.every(cell => cell.model.executionCount !== null);
  return ran && kernel.status === 'idle' ? {ran: cells.length} : null;
}"""


@dataclass
class JupyterLab:
    url: str
    token: str

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None


@pytest.fixture
def chromium() -> Path:
    return chromium_or_skip()


@pytest.fixture
def jupyterlab(lab, tmp_path) -> JupyterLab:
    """JupyterLab on a copy of the lessons; its kernels inherit LAB_STATE_DIR, so lesson 00 reuses the session lab."""
    root = tmp_path / "notebooks"
    shutil.copytree(REPO_DIR / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    app_settings = tmp_path / "app-settings"
    app_settings.mkdir()
    (app_settings / "overrides.json").write_text(json.dumps(OVERRIDES))
    port = PortAllocator("127.0.0.1").free(8900)
    token = secrets.token_hex(16)
    argv = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--ServerApp.token={token}",
        "--allow-root",
        "--expose-app-in-browser",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.app_settings_dir={app_settings}",
    ]
    # Its own user settings, workspaces and runtime files: nothing restores a developer's open tabs, nothing leaks out.
    env = {
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    # The log sits under logs/ so conftest attaches it to a failing test.
    server = processes.spawn(
        "jupyterlab", argv, log_path=tmp_path / "logs" / "jupyterlab.log", env=env, cwd=root, base=tmp_path / "state"
    )
    jupyter = JupyterLab(f"http://127.0.0.1:{port}", token)
    try:

        def answering() -> bool:
            if not server.alive():
                raise RuntimeError(f"JupyterLab exited with code {server.popen.poll()}:\n{server.tail()}")
            return http_get(f"{jupyter.url}/api/status?token={token}")[0] == 200

        wait_until(answering, 60, "JupyterLab to answer")
        yield jupyter
    finally:
        family = [server.pid] + [p.pid for p in _descendants(server.pid)]
        try:
            for session in jupyter.api("/api/sessions") if server.alive() else []:
                jupyter.api(f"/api/sessions/{session['id']}", method="DELETE")
        finally:
            server.stop(timeout=20)
        wait_until(lambda: not any(processes.is_alive(pid) for pid in family), 20, "JupyterLab and its kernels to exit")


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _pid(lab, name: str) -> int | None:
    return next(p.pid for p in lab.status().processes if p.name == name)


@pytest.mark.notebook
@pytest.mark.browser
@pytest.mark.timeout(420)
def test_lesson_00_dashboard_kills_and_restarts_an_instance_in_a_real_browser(chromium, jupyterlab, lab):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    console: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        try:
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
            page.goto(f"{jupyterlab.url}/lab/tree/{LESSON}?token={jupyterlab.token}")
            page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
            page.evaluate(WAIT_FOR_NOTEBOOK, LESSON)

            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            outcome = page.wait_for_function(RUN_ALL_FINISHED, arg=LESSON, timeout=240_000, polling=250).json_value()
            assert "errors" not in outcome, f"lesson 00 failed in the browser: {outcome['errors']}"

            pid = _pid(lab, INSTANCE)  # read once lesson 00 has run: its ensure_cluster may have restarted the lab
            assert pid and processes.is_alive(pid), f"{INSTANCE} should run once lesson 00 has run"
            kill, start, state = (page.locator(f".lab-{what}-{INSTANCE}") for what in ("kill", "start", "state"))
            expect(kill).to_be_enabled(timeout=30_000)
            expect(state).to_contain_text("running")
            expect(start).to_be_disabled()
            page.locator(".lab-dashboard").scroll_into_view_if_needed()
            page.locator(".lab-dashboard").screenshot(path=ARTIFACTS / "browser-dashboard-running.png")

            kill.click()
            expect(state).to_contain_text("stopped", timeout=30_000)
            expect(page.locator(".lab-message")).to_contain_text(f"killed {INSTANCE} (pid {pid})")
            expect(start).to_be_enabled()
            expect(kill).to_be_disabled()
            assert not psutil.pid_exists(pid), f"{INSTANCE} pid {pid} should be gone after the kill button"
            assert _pid(lab, INSTANCE) is None
            page.locator(".lab-dashboard").screenshot(path=ARTIFACTS / "browser-dashboard-killed.png")

            start.click()
            expect(state).to_contain_text("running", timeout=60_000)
            expect(page.locator(".lab-message")).to_contain_text(f"started {INSTANCE}")
            expect(kill).to_be_enabled()
            new_pid = _pid(lab, INSTANCE)
            assert new_pid and new_pid != pid and processes.is_alive(new_pid)
            page.screenshot(path=ARTIFACTS / "browser-lesson-00.png", full_page=True)
        except Exception:
            page.screenshot(path=ARTIFACTS / "browser-failure.png", full_page=True)
            print("browser console:\n" + "\n".join(console[-40:]))
            raise
        finally:
            browser.close()
