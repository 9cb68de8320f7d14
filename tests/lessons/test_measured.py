"""The "What you saw" figures tables: a figure is read against its range, and each lesson's table is built from the
values its notebook computed (here given as those values; the notebooks' headless runs build them from real runs)."""

from __future__ import annotations

import pytest

from lab_services.core.errors import BadInputError
from lab_services.lessons import capstone, config_centre, inside_consul, tracing_lab
from lab_services.lessons.capstone import SLO, ChaosRun
from lab_services.lessons.inside_consul import QueryAnswer
from lab_services.lessons.measured import IN_RANGE, Expected, compare
from lab_services.tracing import ReceivedSpan

GOSSIP = Expected("detection", "s", 4, 15, "left gracefully", "few confirmations")


def test_a_figure_inside_its_range_reads_in_range_at_both_edges():
    assert [GOSSIP.reading(v) for v in (4, 9.5, 15)] == [IN_RANGE] * 3


def test_a_figure_outside_says_what_it_means():
    assert GOSSIP.reading(3.9) == "below: left gracefully"
    assert GOSSIP.reading(15.01) == "above: few confirmations"


def test_the_row_shows_yours_and_the_range_as_a_person_reads_them():
    assert GOSSIP.row(6.74) == {"what": "detection", "yours": "6.74 s", "expected": "4-15 s", "reading": IN_RANGE}
    assert Expected("sent", "calls", 0, 0, "", "bad").range_text == "0 calls"
    assert Expected("read", "ms", 0, 20, "", "slow").row(1.0)["yours"] == "1 ms"
    assert Expected("sync", "s", 0, 120, "", "late").row(123.456)["yours"] == "123 s"


def test_a_range_upside_down_is_refused_naming_the_figure():
    with pytest.raises(BadInputError, match="detection: low 5 is above high 4"):
        Expected("detection", "s", 5, 4, "", "")


def test_compare_keeps_the_order_of_the_figures():
    table = compare([(GOSSIP, 20), (GOSSIP, 5)])
    assert [r["reading"] for r in table.rows] == ["above: few confirmations", IN_RANGE]


def test_lesson_10_reads_every_store_and_both_outages():
    results = [
        {"store": "consul (lab processes)", "median_ms": 8.2},
        {"store": "consul", "median_ms": 12.1},
        {"store": "etcd", "median_ms": 139.0},
    ]
    outages = [
        {"store": "consul", "seconds_to_notice": 10.83, "seconds_to_catch_up": 0.59},
        {"store": "etcd", "seconds_to_notice": 1.0, "seconds_to_catch_up": 0.04},
    ]
    rows = config_centre.what_you_saw(12.4, results, outages).rows
    assert len(rows) == 8 and rows[0]["yours"] == "12.4 ms"
    assert [r["reading"].split(":")[0] for r in rows] == ["in range"] * 3 + ["above", "in range", "below"] + [
        "in range"
    ] * 2


def test_lesson_12_reads_its_seven_figures_in_seconds_and_ms():
    failure = {"seconds to serfHealth critical": 6.74, "seconds to leave ?passing": 6.74}
    stale_row = {"stale": {"ms": 1.1}, "default": {"ms": 7034.0}}
    answer = QueryAnswer("lab", 1, ["user-1"], 2.1)
    rows = inside_consul.what_you_saw(failure, 70.57, 0.11, answer, stale_row).rows
    assert [r["yours"] for r in rows] == ["6.74 s", "6.74 s", "70.6 s", "0.11 s", "2.1 ms", "1.1 ms", "7.03 s"]
    assert {r["reading"] for r in rows} == {IN_RANGE}


def _span(span_id: str, parent: str, service: str, kind: str, ms: float, error: bool = False, **attributes):
    return ReceivedSpan("t", span_id, parent, "n", service, kind, 0, int(ms * 1e6), error, "", attributes)


def test_lesson_13_reads_the_root_the_failed_attempt_and_the_deadline_it_was_given():
    spans = [_span("b", "a", "gateway", "server", 5), _span("a", "", "client", "internal", 16.1)]
    retry = [
        _span("r", "", "client", "internal", 3.4),
        _span("f", "g", "gateway", "client", 1.0, error=True),
        _span("o", "g", "gateway", "client", 1.5),
    ]
    attempt = _span("d", "g", "gateway", "client", 303.2, error=True, **{"rpc.timeout_ms": 299.9})
    rows = tracing_lab.what_you_saw(spans, retry, attempt, 0.3).rows
    assert [r["yours"] for r in rows] == ["16.1 ms", "1 ms", "3.4 ms", "300 ms", "303 ms"]
    assert rows[3]["expected"] == "280-301 ms" and {r["reading"] for r in rows} == {IN_RANGE}
    late = _span("d", "g", "gateway", "client", 303.2, error=True, **{"rpc.timeout_ms": 1000.0})
    assert tracing_lab.what_you_saw(spans, retry, late, 0.3).rows[3]["reading"].startswith("above: more than the")


def _run(ok_until: float, back_at: float) -> ChaosRun:
    """20 calls a second for 14 s, failing from `ok_until` to `back_at`, with user-1 killed at 2 s, started at 11 s."""
    calls = [(n / 20, 0.002, not ok_until <= n / 20 < back_at, "OK", "user-1") for n in range(280)]
    return ChaosRun(calls=calls, faults=[(2.0, "kill", "user-1"), (11.0, "start", "user-1")], duration=14.0)


def test_lesson_14_derives_the_naive_range_from_the_run_and_the_reference_range_from_the_slo():
    naive, reference = _run(2.0, 12.0), _run(0.0, 0.0)
    rows = capstone.what_you_saw(reference, SLO(), naive).rows
    assert [r["what"] for r in rows][:2] == [
        "naive client: success ratio (user-1 down 9.0 s of 14.0 s)",
        "naive client: longest outage (user-1 down 9.0 s)",
    ]
    assert rows[0]["expected"] == "21.4-42.9 %" and rows[1]["expected"] == "8-11 s"
    assert rows[2]["expected"] == "97-100 %" and rows[5]["expected"] == "0 calls"
    assert {r["reading"] for r in rows} == {IN_RANGE}, rows
    assert len(capstone.what_you_saw(reference, SLO())) == 4
