"""Lesson 15's helpers and exercise on a real etcd member: the key table says how the watcher reads each key, and
the 15-dialects checker judges answers against fixed cases and the keys etcd holds."""

from __future__ import annotations

import json

import pytest

from lab_services.lessons import exercises
from lab_services.lessons.exercises import lesson_15
from lab_services.lessons.go_fleet import instance_keys

PREFIX = "/services/user/"
KEYS = {
    PREFIX + "127.0.0.1:50081": "",
    PREFIX + "user-7": json.dumps(
        {"id": "user-7", "name": "user", "address": "127.0.0.1:5007", "host": "127.0.0.1", "port": 5007}
    ),
    PREFIX + "typo": "127.0.0.1",
}


@pytest.fixture
def keys(etcd_node):
    kv = etcd_node.client()
    for key, value in KEYS.items():
        kv.put(key, value)
    yield etcd_node
    kv.delete_prefix(PREFIX)
    kv.close()


def test_the_key_table_says_how_each_key_is_read(keys):
    kv = keys.client()
    try:
        rows = {row["key"]: row for row in instance_keys(kv, PREFIX).rows}
    finally:
        kv.close()
    assert rows[PREFIX + "127.0.0.1:50081"]["layout"] == "articles"
    assert rows[PREFIX + "user-7"]["address"] == "127.0.0.1:5007" and rows[PREFIX + "user-7"]["layout"] == "lab"
    assert rows[PREFIX + "typo"]["layout"] == "unreadable"
    assert "'127.0.0.1' is not host:port" in rows[PREFIX + "typo"]["why not"]


def test_the_published_solution_passes_on_the_live_keys(keys):
    verdict = exercises.check("15-dialects", lesson_15.address_of, endpoints=[keys.endpoint])
    assert verdict, verdict.message
    assert "the 3 keys etcd holds" in verdict.message


def test_answers_that_miss_a_layout_or_a_refusal_are_told_which(keys):
    def values_only(key, value):
        return value.decode() or None

    def no_refusals(key, value):
        return lesson_15.address_of(key, value) or key.rsplit("/", 1)[-1]

    def crashes(key, value):
        return json.loads(value)["address"]

    for answer, says in [
        (values_only, "address_of('/services/user/127.0.0.1:8080', b'') returned None; expected '127.0.0.1:8080'"),
        (no_refusals, "returned 'e2'; it describes no instance"),
        (crashes, "raised JSONDecodeError"),
    ]:
        verdict = exercises.check("15-dialects", answer, endpoints=[keys.endpoint])
        assert not verdict and says in verdict.message, verdict.message
