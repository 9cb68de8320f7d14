"""ipywidgets dashboards for the lessons; each is a plain class with its widgets as attributes and `.widget` to display."""
from __future__ import annotations

from lab_services.widgets.cluster_overview import ClusterOverview
from lab_services.widgets.health_board import HealthBoard

__all__ = ["ClusterOverview", "HealthBoard"]
