"""The lab's web pages open from the learner's browser: direct on a laptop, through JupyterLab's proxy on a hub."""

from __future__ import annotations

from lab_services.lessons import web_links
from lab_services.lessons.widgets.cluster_overview import summary_html


def test_on_a_laptop_the_links_are_the_servers_own(lab, monkeypatch):
    monkeypatch.delenv(web_links.HUB_PREFIX_ENV, raising=False)
    status = lab.status()
    assert web_links.consul_ui(status) == status.consul.ui
    assert web_links.prometheus_targets(status) == f"{status.prometheus.url}/targets"


def test_under_a_hub_they_go_through_the_learners_own_prefix(lab, monkeypatch):
    monkeypatch.setenv(web_links.HUB_PREFIX_ENV, "/user/alice/")
    status = lab.status()
    assert web_links.consul_ui(status) == "/user/alice/consul/ui/"
    assert web_links.prometheus_targets(status) == "/user/alice/prometheus/targets"
    assert "href='/user/alice/consul/ui/'" in summary_html(status, [])
