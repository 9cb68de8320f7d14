"""The lab's own Prometheus pages, targets and an instant query, which the classroom proxy serves in place of the web
UI that Debian's Prometheus build does not ship.

    page("/targets", "127.0.0.1:9090")          # the body of the targets page, or None for a path that is not ours

They read Prometheus's HTTP API through `metrics.prometheus`, as lesson 08 does. Every link is relative, so the
pages work under whatever prefix the proxy serves them (`/user/alice/prometheus/targets`).
"""

from __future__ import annotations

import urllib.parse
from html import escape

from lab_services.core.table import html_table
from lab_services.metrics import prometheus as prom

# The example a learner sees first in the query box: which targets are up.
DEFAULT_QUERY = "up"
HEALTH_COLOURS = {"up": "#1a7f37", "down": "#cf222e"}
NAV = "<nav><a href='targets'>Targets</a> · <a href='graph'>Query</a> · <a href='api/v1/targets'>API</a></nav>"


def page(target: str, address: str) -> str | None:
    """The body of our page at `target` (a path with its query) for the Prometheus at `address` (host:port), or
    None when the path is not one of ours and goes to Prometheus itself."""
    parts = urllib.parse.urlsplit(target)
    url = f"http://{address}"
    if parts.path == "/":
        return NAV + "<p>The lab's Prometheus: what it scrapes (Targets) and what it has (Query).</p>"
    if parts.path == "/targets":
        return NAV + targets(url)
    if parts.path == "/graph":
        query = urllib.parse.parse_qs(parts.query)
        expression = (query.get("expr") or query.get("g0.expr") or [DEFAULT_QUERY])[0]
        return NAV + graph(url, expression)
    return None


def targets(url: str) -> str:
    """Every active scrape target: job, instance, address, health and last error."""
    try:
        found = prom.targets(url)
    except prom.PrometheusError as err:
        return f"<p class='error'>{escape(str(err))}</p>"
    for target in found:
        colour = HEALTH_COLOURS.get(target["health"], "#9a6700")
        target["health"] = f"<b style='color:{colour}'>{escape(target['health'])}</b>"
    up = sum(">up<" in t["health"] for t in found)
    return f"<h2>Targets</h2><p>{up} of {len(found)} up</p>" + html_table(found, markup=("health",))


def graph(url: str, expression: str) -> str:
    """A query box and the instant answer to `expression` as a table (lesson 08 plots; this page lists)."""
    form = (
        "<h2>Query</h2><form method='get' action='graph'>"
        f"<input name='expr' size='80' value='{escape(expression, quote=True)}'> <button>Execute</button></form>"
    )
    try:
        samples = prom.query(url, expression)
    except prom.PrometheusError as err:
        return form + f"<p class='error'>{escape(str(err))}</p>"
    rows = [{"series": _series(s.labels), "value": s.value} for s in samples]
    return form + f"<p>{len(rows)} series</p>" + (html_table(rows) if rows else "")


def _series(labels: dict[str, str]) -> str:
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest else name or "{}"
