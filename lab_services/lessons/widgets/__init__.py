"""ipywidgets dashboards for the lessons; each is a plain class with its widgets as attributes and `.widget` to display."""
from __future__ import annotations

from lab_services.widgets.cluster_overview import ClusterOverview
from lab_services.widgets.dashboard import LabDashboard
from lab_services.widgets.fault_panel import FaultPanel
from lab_services.widgets.health_board import HealthBoard
from lab_services.widgets.stream_meter import StreamMeter
from lab_services.widgets.traffic_split import TrafficSplit

__all__ = ["ClusterOverview", "FaultPanel", "HealthBoard", "LabDashboard", "StreamMeter", "TrafficSplit"]
