"""Lesson 09's removal table: the kills and the hangs of `removal_comparison` in one table of removal times."""

from __future__ import annotations

from lab_services.core.table import Table
from lab_services.lessons.drills import REMOVAL_TIMES, removal_table


def _row(setting: str, drill: str, median: float, **params) -> dict:
    return {
        "setting": setting,
        "drill": drill,
        **params,
        "runs": 1,
        "median_seconds_to_removed": median,
        "min_seconds_to_removed": median,
        "max_seconds_to_removed": median,
        "fired_first": {"grpc": 1},
        "samples": [median],
    }


def test_removal_table_joins_the_comparisons_in_order_and_shows_only_the_times():
    kills = Table([_row("default 10s", "service-kill", 4.2, check_interval="10s")], ["setting", "check_interval"])
    hangs = Table([_row("tuned 3s", "service-pause", 3.9, check_interval="3s", ttl="9s")])
    table = removal_table(kills, hangs)
    assert [(r["setting"], r["drill"]) for r in table] == [
        ("default 10s", "service-kill"),
        ("tuned 3s", "service-pause"),
    ]
    assert table.columns == ["setting", "drill", *REMOVAL_TIMES]
    assert "check_interval" not in repr(table) and "median_seconds_to_removed" in repr(table)
    assert table[1]["ttl"] == "9s", "the rows keep their settings; only the table leaves them out"
