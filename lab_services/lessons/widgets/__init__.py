"""ipywidgets dashboards for the lessons: each is a plain class with its widgets as attributes, `.widget` to display."""

from __future__ import annotations

from lab_services.lessons.widgets.cluster_overview import ClusterOverview
from lab_services.lessons.widgets.dashboard import LabDashboard
from lab_services.lessons.widgets.fault_panel import FaultPanel
from lab_services.lessons.widgets.health_board import HealthBoard
from lab_services.lessons.widgets.hints import HintLadder, hints
from lab_services.lessons.widgets.lease_control import LeaseControl
from lab_services.lessons.widgets.stream_meter import StreamMeter
from lab_services.lessons.widgets.traffic_split import TrafficSplit

__all__ = [
    "ClusterOverview",
    "FaultPanel",
    "HealthBoard",
    "HintLadder",
    "LabDashboard",
    "LeaseControl",
    "StreamMeter",
    "TrafficSplit",
    "hints",
]
