# The classroom hub's configuration, as `jupyterhub -f` reads it: the settings the launcher wrote
# (`discovery-lab classroom`, lab_services/classroom/hub.py), applied by lab_services/classroom/hub_config.py.
import os
from pathlib import Path

from lab_services.classroom.hub_config import configure
from lab_services.classroom.settings import HubSettings

configure(get_config(), HubSettings.load(Path(os.environ["LAB_HUB_SETTINGS"])), os.environ["LAB_HUB_PROXY"])  # noqa: F821
