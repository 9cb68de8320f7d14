"""A learner's server starts lesson 00's lab ahead of the learner: in the shape the lesson asks for."""

from __future__ import annotations

import json

from lab_services.classroom.singleuser import FIRST_LAB, FIRST_LESSON
from lab_services.core.paths import REPO_DIR


def test_the_lab_a_learners_server_starts_is_lesson_00s():
    """The server starts lesson 00's lab ahead of the learner (singleuser.FIRST_LAB): the shape its parameters cell
    asks for, or the lesson would start another."""
    cells = json.loads((REPO_DIR / "notebooks" / FIRST_LESSON).read_text())["cells"]
    parameters = next("".join(c["source"]) for c in cells if "CONSUL_SERVERS =" in "".join(c["source"]))
    values = {}
    exec(parameters, values)
    assert {
        "consul_servers": values["CONSUL_SERVERS"],
        "etcd_members": values["ETCD_MEMBERS"],
        "services": values["SERVICES"],
    } == FIRST_LAB
