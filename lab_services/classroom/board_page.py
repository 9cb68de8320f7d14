"""The board's one HTML page: a table per learner and per check, refreshed from `<prefix>api/board` every few seconds.

The page is static apart from a few values; everything it shows comes from the JSON. Every request it makes carries
the page's XSRF token: JupyterHub's OAuth cookie authenticates a script's fetch (GET too) only with it.
"""

from __future__ import annotations

import json

REFRESH_SECONDS = 5

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Classroom progress</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5em; }
 table { border-collapse: collapse; margin-bottom: 2em; }
 th, td { border-bottom: 1px solid #ddd; padding: .3em .8em; text-align: left; }
 .pass { color: #1a7f37; } .fail { color: #cf222e; } .stuck { background: #fff1c2; }
</style></head>
<body>
<h1>Classroom progress</h1>
<p id="status">loading…</p>
<h2>Learners</h2>
<table id="learners"><thead><tr><th>learner</th><th>lesson</th><th>last check</th><th>outcome</th>
<th>since</th><th></th></tr></thead><tbody></tbody></table>
<h2>Checks</h2>
<table id="checks"><thead><tr><th>lesson</th><th>check</th><th>passed</th><th>tried</th></tr></thead><tbody></tbody>
</table>
<script>
const PREFIX = __PREFIX__, XSRF = __XSRF__, STUCK_MINUTES = __STUCK__, REFRESH = __REFRESH__;
function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; }
function ago(seconds) { return seconds < 90 ? Math.round(seconds) + " s" : Math.round(seconds / 60) + " min"; }
async function reset(name, button) {
  if (!confirm("Reset " + name + "'s lab?")) return;
  button.disabled = true; button.textContent = "resetting…";
  const r = await fetch(PREFIX + "api/learners/" + encodeURIComponent(name) + "/reset",
                        {method: "POST", headers: {"X-XSRFToken": XSRF}});
  const answer = await r.json();
  const steps = (answer.steps || []).join(", ") || "nothing to undo";
  alert(name + ": " + (answer.ok ? "reset: " + steps : answer.message || answer.error));
  button.disabled = false; button.textContent = "reset";
}
async function refresh() {
  try {
    const r = await fetch(PREFIX + "api/board", {headers: {"X-XSRFToken": XSRF}});
    if (!r.ok) throw new Error("HTTP " + r.status);
    const board = await r.json();
    const learners = document.querySelector("#learners tbody"); learners.replaceChildren();
    for (const l of board.learners) {
      const row = learners.insertRow(); if (l.stuck) row.className = "stuck";
      cell(row, l.learner); cell(row, l.lesson); cell(row, l.check);
      cell(row, l.passed ? "pass" : (l.stuck ? "stuck" : "fail") + (l.detail ? ": " + l.detail : ""),
           l.passed ? "pass" : "fail");
      cell(row, l.passed ? ago(board.now - l.at) + " ago" : "failing for " + ago(board.now - l.failing_since));
      const button = document.createElement("button"); button.textContent = "reset";
      button.onclick = () => reset(l.learner, button); row.insertCell().append(button);
    }
    const checks = document.querySelector("#checks tbody"); checks.replaceChildren();
    for (const c of board.checks) {
      const row = checks.insertRow(); cell(row, c.lesson); cell(row, c.check); cell(row, c.passed); cell(row, c.tried);
    }
    document.getElementById("status").textContent = board.learners.length + " learners; stuck means failing for more "
      + "than " + STUCK_MINUTES + " min; updated " + new Date().toLocaleTimeString();
  } catch (err) {
    document.getElementById("status").textContent = "the board could not be read (" + err.message + "); retrying";
  }
}
refresh(); setInterval(refresh, REFRESH * 1000);
</script>
</body></html>
"""


def render_board_page(prefix: str, xsrf: str, stuck_minutes: float) -> str:
    """The page, with the service's prefix, the browser's XSRF token (for the reset POST) and the stuck threshold."""
    values = {
        "__PREFIX__": json.dumps(prefix),
        "__XSRF__": json.dumps(xsrf),
        "__STUCK__": json.dumps(stuck_minutes),
        "__REFRESH__": str(REFRESH_SECONDS),
    }
    page = _PAGE
    for name, value in values.items():
        # json.dumps makes a JS string literal; escaping "<" keeps "</script>" inside a value from closing the tag.
        page = page.replace(name, value.replace("<", "\\u003c"))
    return page
