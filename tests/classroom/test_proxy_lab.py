"""The learner's Consul UI and Prometheus pages through jupyter-server-proxy, as under a hub: a real lab, a real
`jupyter lab` at base URL /user/alice/ with the classroom's proxy entries, and Debian's chromium.

One lab (one Consul server, Prometheus, two instances registered in Consul) and one JupyterLab serve the module.
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from browsers import CHROMIUM_ARGS, chromium_or_skip, jupyterlab_server
from labs import local_lab

from lab_services.core.wait import wait_until
from lab_services.metrics import prometheus
from lab_services.runtime import Cluster

BASE_URL = "/user/alice/"
KV_KEY = "classroom/proxy-check"
# The proxy's entries as a hub's JupyterLab loads them from the entry points (given here while they are not
# installed, and never twice), and one more whose forwarder looks for its lab in an empty state directory: a learner
# who has not started one.
SERVER_CONFIG = """
from importlib.metadata import entry_points
from lab_services.classroom import proxy
installed = {{e.name for e in entry_points(group="jupyter_serverproxy_servers")}}
entries = {{"consul": proxy.consul, "prometheus": proxy.prometheus}}
c.ServerProxy.servers = {{name: entry() for name, entry in entries.items() if name not in installed}}
c.ServerProxy.servers["consul-nolab"] = {{
    **proxy.consul(), "environment": {{"LAB_STATE_DIR": {empty!r}}}, "launcher_entry": {{"enabled": False}}
}}
"""


@dataclass
class Hub:
    """A learner's JupyterLab as the hub serves it: its address, base URL and token."""

    url: str
    token: str
    pid: int

    def get(self, path: str, accept: str = "*/*") -> tuple[int, str, bytes]:
        """Status, content type and body of `BASE_URL + path`, an HTTP error included."""
        request = urllib.request.Request(
            f"{self.url}{BASE_URL}{path}", headers={"Authorization": f"token {self.token}", "Accept": accept}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type", ""), err.read()

    def json(self, path: str):
        status, _, body = self.get(path)
        assert status == 200, f"{path}: HTTP {status}: {body[:300]!r}"
        return json.loads(body)


@pytest.fixture(scope="module")
def proxied_lab(tmp_path_factory) -> Cluster:
    with local_lab(
        tmp_path_factory.mktemp("proxied-lab"), consul_servers=1, etcd_members=0, services=2, registry="consul"
    ) as lab:
        consul = lab.status().consul.http[0]
        request = urllib.request.Request(f"http://{consul}/v1/kv/{KV_KEY}", data=b"on", method="PUT")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.read() == b"true"
        # The lab is up once its instances pass in Consul; Prometheus finds them through Consul a moment later.
        wait_for_prometheus_targets(lab)
        yield lab


def wait_for_prometheus_targets(lab: Cluster) -> None:
    url = lab.status().prometheus.url
    for job, count in (("prometheus", 1), ("consul", 1), ("lab-services", 2)):
        prometheus.wait_for_targets(url, job, count, timeout=30)


@pytest.fixture(scope="module")
def hub(proxied_lab, tmp_path_factory) -> Hub:
    tmp = tmp_path_factory.mktemp("hub-jupyterlab")
    (tmp / "no-lab").mkdir()
    config = tmp / "jupyter_server_config.py"
    config.write_text(SERVER_CONFIG.format(empty=str(tmp / "no-lab")))
    (tmp / "notebooks").mkdir()
    token = secrets.token_hex(16)
    args = [f"--ServerApp.base_url={BASE_URL}", f"--config={config}", f"--ServerApp.root_dir={tmp / 'notebooks'}"]
    with jupyterlab_server(tmp, token, args, env={"LAB_STATE_DIR": str(proxied_lab.base)}) as (url, pid):
        yield Hub(url, token, pid)
        forwarders = [
            p for p in psutil.Process(pid).children(recursive=True) if "lab_services.classroom.proxy" in p.cmdline()
        ]
    wait_until(lambda: not any(p.is_running() for p in forwarders), 20, "the forwarders to exit with JupyterLab")


def test_jupyterlab_lists_the_consul_ui_and_prometheus_for_its_launcher(hub):
    entries = {s["name"]: s["launcher_entry"] for s in hub.json("server-proxy/servers-info")["server_processes"]}
    assert entries["consul"]["title"] == "Consul UI" and entries["consul"]["path_info"] == "consul/ui/"
    assert entries["prometheus"]["title"] == "Prometheus" and entries["prometheus"]["path_info"] == "prometheus/targets"
    assert entries["consul"]["category"] == entries["prometheus"]["category"] == "Service Discovery Lab"


def test_the_consul_api_answers_through_the_prefix(hub, proxied_lab):
    assert hub.json("consul/v1/catalog/services")["user"] == ["v1"]
    instances = hub.json("consul/v1/health/service/user?passing=1")
    assert sorted(i["Service"]["ID"] for i in instances) == ["user-1", "user-2"]


def test_the_consul_ui_page_and_scripts_name_only_prefixed_paths(hub):
    status, content_type, body = hub.get("consul/ui/lab/services", accept="text/html")
    page = body.decode()
    assert status == 200 and content_type.startswith("text/html"), (status, content_type)
    # Every attribute that loads something, and every quoted path with a ui/ or v1/ in it (the scripts' own).
    attributes = re.findall(r'(?:src|href)="([^"]*)"', page)
    quoted = re.findall(r"""["'](/[^"'\s]*?(?:ui|v1)/[^"']*)""", page)
    paths = attributes + quoted
    assert len(paths) >= 10 and all(p.startswith(f"{BASE_URL}consul/ui/") for p in paths), paths
    config = json.loads(urllib.parse.unquote(re.search(r'environment" content="([^"]+)"', page).group(1)))
    assert config["rootURL"] == f"{BASE_URL}consul/ui/"
    api_calls = 0
    for script in (p for p in paths if p.endswith(".js") and "/codemirror/" not in p):
        status, _, code = hub.get(script[len(BASE_URL) :])
        assert status == 200, f"{script}: HTTP {status}"
        text = code.decode()
        assert text.count("/v1/") == text.count(f"{BASE_URL}consul/v1/"), f"{script} calls /v1/ outside the prefix"
        api_calls += text.count("/v1/")
    assert api_calls >= 50, f"Consul 1.8.7's UI spells 57 API templates; the scripts held {api_calls}"


def test_prometheus_api_and_targets_page_answer_through_the_prefix(hub):
    targets = hub.json("prometheus/api/v1/targets")["data"]["activeTargets"]
    assert {t["labels"]["job"] for t in targets} >= {"consul", "lab-services", "prometheus"}
    status, content_type, body = hub.get("prometheus/targets", accept="text/html")
    assert status == 200 and content_type.startswith("text/html")
    assert "user-1" in body.decode() and "lab-services" in body.decode()


def test_without_a_lab_the_proxy_says_which_lab_is_missing_and_how_to_start_it(hub, tmp_path_factory):
    status, content_type, body = hub.get("consul-nolab/v1/catalog/services")
    assert status == 503 and content_type.startswith("text/plain"), (status, content_type, body)
    message = body.decode()
    assert "no lab is running in " in message and message.rstrip().endswith("start one with `discovery-lab up`")
    assert "no-lab" in message, f"the message should name the learner's state directory: {message}"
    status, content_type, body = hub.get("consul-nolab/ui/", accept="text/html")
    assert status == 503 and content_type.startswith("text/html") and b"`discovery-lab up`" in body


def test_a_stopped_consul_server_is_named_with_the_command_that_starts_it(hub, proxied_lab):
    proxied_lab.stop("consul-1")
    try:
        status, _, body = hub.get("consul/v1/catalog/services")
        assert status == 503, (status, body)
        assert body.decode().strip().endswith("(consul-1 stopped); start one with `discovery-lab start consul-1`")
    finally:
        proxied_lab.start("consul-1")
    wait_until(
        lambda: len(hub.json("consul/v1/health/service/user?passing=1")) == 2,
        30,
        "both instances to pass in the restarted Consul, through the proxy",
    )
    wait_for_prometheus_targets(proxied_lab)  # its Consul discovery lost them with the server


# -- in a real browser -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser_page(hub):
    from playwright.sync_api import sync_playwright

    chromium = chromium_or_skip()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # The token once, as a learner's hub login would; the cookie carries it from then on.
            page.goto(f"{hub.url}{BASE_URL}api/status?token={hub.token}")
            yield page
        finally:
            browser.close()


@pytest.fixture
def requests_seen(browser_page):
    """Every URL the page asks for during the test."""
    seen: list[str] = []

    def record(request) -> None:
        seen.append(request.url)

    browser_page.on("request", record)
    yield seen
    browser_page.remove_listener("request", record)


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.mark.browser
def test_the_consul_ui_shows_the_labs_services_instances_checks_nodes_and_keys(hub, browser_page, requests_seen):
    from playwright.sync_api import expect

    page = browser_page
    ui = f"{hub.url}{BASE_URL}consul/ui/"
    try:
        page.goto(ui)
        page.wait_for_url(f"{ui}lab/services")
        page.get_by_role("link", name="user", exact=True).click()
        page.wait_for_url(f"{ui}lab/services/user/instances")
        expect(page.get_by_text("user-2", exact=True)).to_be_visible(timeout=20_000)
        page.get_by_text("user-1", exact=True).click()
        page.wait_for_url(f"{ui}lab/services/user/instances/consul-1/user-1/health-checks")
        expect(page.get_by_text("gRPC health", exact=False)).to_be_visible(timeout=20_000)
        page.get_by_role("link", name="Nodes", exact=True).click()
        page.wait_for_url(f"{ui}lab/nodes")
        expect(page.get_by_role("link", name="consul-1")).to_be_visible(timeout=20_000)
        page.get_by_role("link", name="Key/Value", exact=True).click()
        page.wait_for_url(f"{ui}lab/kv")
        expect(page.get_by_role("link", name=KV_KEY.split("/")[0])).to_be_visible(timeout=20_000)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "browser-consul-ui-proxied.png", full_page=True)
        raise
    outside = [url for url in requests_seen if not url.startswith(f"{hub.url}{BASE_URL}")]
    assert not outside, f"the Consul UI asked for paths outside the learner's prefix: {outside}"
    assert any("/consul/v1/health/service/user" in url for url in requests_seen)


@pytest.mark.browser
def test_prometheus_targets_and_query_pages_show_the_labs_targets(hub, browser_page, proxied_lab):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{hub.url}{BASE_URL}prometheus/targets")
    for instance in ("user-1", "user-2"):
        expect(page.get_by_role("row").filter(has_text=instance)).to_contain_text("lab-services")
    expect(page.get_by_text(re.compile(r"^\d+ of \d+ up$"))).to_be_visible()
    page.get_by_role("link", name="Query").click()
    page.get_by_role("textbox").fill('up{job="lab-services"}')
    page.get_by_role("button", name="Execute").click()
    expect(page.get_by_text("2 series")).to_be_visible()
    assert page.url.startswith(f"{hub.url}{BASE_URL}prometheus/graph?expr=")


@pytest.mark.browser
def test_the_jupyterlab_launcher_has_cards_for_the_consul_ui_and_prometheus(hub, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{hub.url}{BASE_URL}lab")
    launcher = page.locator(".jp-Launcher-section").filter(has_text="Service Discovery Lab")
    expect(launcher.locator(".jp-LauncherCard", has_text="Consul UI")).to_be_visible(timeout=60_000)
    expect(launcher.locator(".jp-LauncherCard", has_text="Prometheus")).to_be_visible()
