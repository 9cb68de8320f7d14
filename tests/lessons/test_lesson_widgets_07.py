"""Lesson 05 and 07 widgets driven without a browser: StreamMeter's kill button, FaultPanel's sliders and toggles."""

from __future__ import annotations

import pytest

from lab_services.core.wait import wait_until
from lab_services.lessons.streaming import FanOutWriter, ResumableWatch
from lab_services.lessons.widgets import FaultPanel, StreamMeter
from lab_services.service import AdminClient

pytestmark = pytest.mark.timeout(120)


def test_stream_meter_kill_button_moves_the_stream_without_a_gap(three_in_consul, three_in_consul_watcher):
    writer = FanOutWriter(three_in_consul_watcher)
    start = writer.start_sequence()
    watch = ResumableWatch(three_in_consul_watcher, since_sequence=start).start()
    meter = StreamMeter(watch, kill=three_in_consul.kill, writer=writer, write_rate=100).start(duration=20)
    try:
        first = watch.wait_serving(5)
        assert watch.wait_for_sequence(start + 20, 5)
        # The meter redraws on its own clock (every redraw_every): wait for the redraw, not for a fixed time.
        wait_until(
            lambda: f"served by <b>{first}</b>" in meter.serving.value,
            5,
            "the meter to show the serving instance",
            seen=lambda: meter.serving.value,
        )
        meter.kill_button.click()
        assert meter.kills[-1][1] == first and three_in_consul.state_of(first) == "stopped"
        assert watch.wait_for_sequence(writer.sequence + 20, 10), watch.failures
        meter.stop()
        assert watch.wait_for_sequence(writer.sequence, 5)
    finally:
        meter.stop()
        watch.stop()
        writer.close()
        three_in_consul.start(first)
    result = watch.check(first=start + 1, last=writer.sequence)
    assert result["gaps"] == [] and result["duplicates"] == [] and len(result["instances"]) == 2, result
    assert "0 missing, 0 duplicated" in meter.integrity.value
    assert "events/s" in meter.throughput.value and first in meter.history.value


def test_stream_meter_kill_without_stream_says_so(three_in_consul_watcher):
    watch = ResumableWatch(three_in_consul_watcher)  # never started: no stream open
    meter = StreamMeter(watch, kill=lambda _: pytest.fail("nothing should be killed"))
    meter.kill_button.click()
    assert meter.kills == [] and "no stream is open" in meter.status.value


def test_fault_panel_sliders_toggles_and_breakers(three_in_consul, three_in_consul_watcher):
    admins = {s.id: s.admin for s in three_in_consul.status().services}
    panel = FaultPanel(
        three_in_consul_watcher,
        admins,
        target="user-2",
        calls_per_tick=30,
        breaker_settings={"failure_threshold": 3, "window": 10, "open_for": 30.0},
    )
    try:
        clean = panel.step()
        assert clean["success"] == 1.0 and set(clean["served_by"]) == {s.id for s in three_in_consul.status().services}

        panel.error_rate.value = 1.0
        assert AdminClient(admins["user-2"]).state()["faults"]["error_rate"] == 1.0
        faulty = panel.step()
        assert faulty["success"] == pytest.approx(2 / 3, abs=0.05) and "user-2" not in faulty["served_by"]

        panel.retries_toggle.value = True
        assert panel.step()["success"] == 1.0

        panel.retries_toggle.value = False
        panel.breakers_toggle.value = True
        panel.step()
        guarded = panel.step()
        assert guarded["success"] == 1.0 and guarded["breakers"], guarded
        assert panel.breakers.snapshot()["user-2"]["state"] == "OPEN"
        assert "OPEN" in panel.breaker_table.value and bytes(panel.chart.value).startswith(b"\x89PNG")

        panel.latency_ms.value = 50
        panel.target.value = "user-1"  # moving the target clears the old one's faults
        assert AdminClient(admins["user-2"]).state()["faults"] == {"latency_ms": 0.0, "error_rate": 0.0}
        assert AdminClient(admins["user-1"]).state()["faults"] == {"latency_ms": 50.0, "error_rate": 1.0}

        panel.start(duration=1.5)
        assert panel.wait(10)
        assert len(panel.history) >= 6
    finally:
        panel.close()
    assert all(AdminClient(a).state()["faults"]["error_rate"] == 0 for a in admins.values())
    assert panel.error_rate.value == 0 and panel.latency_ms.value == 0
