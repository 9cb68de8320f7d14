"""Lesson 13's overview of the traced system: where each part listens, and how the gateway knows each instance."""

from __future__ import annotations

from lab_services.lessons.tracing_lab import TracedSystem, overview


def test_the_overview_lists_receiver_gateway_and_every_instance_as_a_fixed_target():
    with TracedSystem(instances=2) as system:
        rows = {row["part"]: row for row in overview(system)}
        assert list(rows) == ["OTLP receiver", "gateway", "user-1", "user-2"]
        assert rows["OTLP receiver"]["address"] == system.receiver.endpoint
        assert rows["gateway"]["address"] == system.gateway.address
        assert rows["user-2"]["address"] == system.instance("user-2").address
        assert {rows[u]["the gateway's target"] for u in ("user-1", "user-2")} == {"a fixed address"}
