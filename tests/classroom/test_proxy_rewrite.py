"""The classroom proxy's rewriting and entries, on what Consul 1.8.7's UI really sends (no servers needed)."""

from __future__ import annotations

import json
import re
import urllib.parse

from jupyter_server_proxy.config import ServerProcess

from lab_services.classroom import prometheus_views, proxy

PREFIX = "/user/alice/consul/"
# Cut from the page Consul 1.8.7 serves at /ui/: its Ember configuration (URL-encoded), the script that sets the
# root URL again, an asset and a script it appends itself.
CONSUL_PAGE = (
    '<meta name="consul-ui/config/environment" content="%7B%22modulePrefix%22%3A%22consul-ui%22%2C%22rootURL%22%3A'
    '%22%2Fui%2F%22%2C%22locationType%22%3A%22auto%22%7D" />\n'
    "    setConfig('consul-ui', {rootURL: '/ui/', CONSUL_ACLS_ENABLED: false});\n"
    '  <link integrity="" rel="stylesheet" href="/ui/assets/consul-ui-97ec8a4278cddf4266ff5aa45bf84f69.css">\n'
    "      appendScript('/ui/assets/encoding.js');\n"
    '  <script src="/ui/assets/consul-ui-21d63b0298afc21debc0d574ec59049b.js"></script>\n'
)
# Two of the UI's 57 request templates, as its JavaScript spells them.
CONSUL_SCRIPT = (
    'function a(){var e=d(["\\n      GET /v1/internal/ui/services?","\\n      X-Request-ID: ","\\n    "])'
    'function o(){var e=c(["\\n      PUT /v1/kv/","?","\\n      Content-Type: text/plain"])'
)


def test_the_consul_page_names_only_prefixed_paths_and_its_router_roots_under_the_prefix():
    page = proxy.prefixed_consul_ui(CONSUL_PAGE.encode(), "text/html; charset=utf-8", PREFIX).decode()
    paths = re.findall(r"""["'](/[^"']*)""", page)
    assert len(paths) == 4 and all(p.startswith(f"{PREFIX}ui/") for p in paths), paths
    config = json.loads(urllib.parse.unquote(re.search(r'content="([^"]+)"', page).group(1)))
    assert config["rootURL"] == f"{PREFIX}ui/"


def test_every_api_template_of_the_consul_script_carries_the_prefix():
    script = proxy.prefixed_consul_ui(CONSUL_SCRIPT.encode(), "text/javascript; charset=utf-8", PREFIX).decode()
    assert "GET /user/alice/consul/v1/internal/ui/services?" in script
    assert "PUT /user/alice/consul/v1/kv/" in script
    assert script.count("/v1/") == script.count(f"{PREFIX}v1/") == 2


def test_without_a_prefix_and_for_other_content_nothing_changes():
    assert proxy.prefixed_consul_ui(CONSUL_PAGE.encode(), "text/html", "/") == CONSUL_PAGE.encode()
    assert proxy.prefixed_consul_ui(CONSUL_SCRIPT.encode(), "application/json", PREFIX) == CONSUL_SCRIPT.encode()


def test_a_blocking_query_without_a_wait_gets_one_shorter_than_the_proxys_timeout():
    assert proxy.capped_wait("/v1/health/service/user?dc=lab&index=11") == (
        f"/v1/health/service/user?dc=lab&index=11&wait={proxy.BLOCKING_WAIT}"
    )
    assert proxy.capped_wait("/v1/health/service/user?index=11&wait=5s") == "/v1/health/service/user?index=11&wait=5s"
    assert proxy.capped_wait("/v1/catalog/services?dc=lab") == "/v1/catalog/services?dc=lab"


def test_a_prefix_that_could_break_out_of_a_quoted_string_is_refused():
    assert proxy.PREFIX_PATTERN.fullmatch("/user/alice%40example.org/consul/")
    assert not proxy.PREFIX_PATTERN.fullmatch("/user/a'lice/consul/")
    assert not proxy.PREFIX_PATTERN.fullmatch('/user/"><script>/')


def test_the_entries_are_valid_jupyter_server_proxy_servers_with_launcher_cards():
    consul = ServerProcess(name="consul", **proxy.consul())
    prometheus = ServerProcess(name="prometheus", **proxy.prometheus())
    assert (consul.launcher_entry.title, consul.launcher_entry.path_info) == ("Consul UI", "consul/ui/")
    assert (prometheus.launcher_entry.title, prometheus.launcher_entry.path_info) == (
        "Prometheus",
        "prometheus/targets",
    )
    assert consul.command[1:4] == ["-m", "lab_services.classroom.proxy", "consul"]
    assert consul.unix_socket is True and consul.timeout == proxy.STARTUP_TIMEOUT


def test_the_prometheus_views_are_ours_only_at_their_own_paths():
    assert prometheus_views.page("/api/v1/targets", "127.0.0.1:1") is None
    assert prometheus_views.page("/graph/", "127.0.0.1:1") is None
    home = prometheus_views.page("/", "127.0.0.1:1")
    assert "href='targets'" in home and "href='graph'" in home
    assert prometheus_views._series({"__name__": "up", "job": "consul", "instance": "a"}) == (
        'up{instance="a", job="consul"}'
    )


def test_a_prometheus_view_that_cannot_reach_prometheus_says_where_it_looked():
    page = prometheus_views.page("/targets", "127.0.0.1:1")
    assert "class='error'" in page and "prometheus at http://127.0.0.1:1 unreachable" in page
