"""Go durations as Consul and etcd write them: parsed to seconds, and printed back the way Consul shows them."""

from __future__ import annotations

import pytest

from lab_services.core.durations import go_duration, parse_duration


@pytest.mark.parametrize(
    "text, seconds",
    [("500ms", 0.5), ("3s", 3.0), ("1m", 60.0), ("1h", 3600.0), ("1m30s", 90.0), ("1.5s", 1.5), ("250us", 0.00025)],
)
def test_durations_parse(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["3x", "3", "", "s", "-1s", "1 s", "3s ", None, 3])
def test_malformed_durations_are_refused(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "ns, text",
    [(60_000_000_000, "1m0s"), (1_500_000_000, "1.5s"), (500_000_000, "500ms"), (3_725_000_000_000, "1h2m5s")],
)
def test_go_duration_prints_like_consul(ns, text):
    assert go_duration(ns) == text
