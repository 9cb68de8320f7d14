"""Lesson 10's experiments, widget, prediction and exercise checker against a real lab whose instances follow Consul."""

from __future__ import annotations

import pytest
from labs import local_lab

from lab_services.lessons import config_centre as cc
from lab_services.lessons import exercises
from lab_services.lessons.exercises import lesson_10
from lab_services.lessons.widgets.settings_editor import SettingsEditor
from lab_services.service.settings import Setting


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_lab(
        tmp_path_factory.mktemp("config-centre"),
        consul_servers=3,
        etcd_members=1,
        services=2,
        prometheus=False,
        config_store="consul",
    ) as lab:
        yield lab


def test_lab_instances_follow_consul_and_propagation_is_measured_for_both_stores(cluster):
    instances = cc.instances_of(cluster)
    assert sorted(instances) == ["user-1", "user-2"]
    consul = cc.time_propagation(cc.lab_store(cluster, "consul"), instances, repeats=2, progress=None)
    assert consul["store"] == "consul" and len(consul["samples_ms"]) == 2 and consul["min_ms"] <= consul["median_ms"]
    with cc.Fleet("etcd", cluster, size=2) as fleet:
        etcd = cc.time_propagation(cc.lab_store(cluster, "etcd"), fleet.admins, repeats=2, progress=None)
    assert etcd["instances"] == 2 and all(s > 0 for s in etcd["samples_ms"])
    rows = cc.settings_table(instances).rows
    assert {r["source"] for r in rows} == {"consul"} and len({r["revision"] for r in rows}) == 1


@pytest.mark.parametrize("kind", ["consul", "etcd"])
def test_check_and_set_prevents_the_lost_update(cluster, kind):
    store = cc.lab_store(cluster, kind, prefix="config/lost-update")
    try:
        blind = cc.lost_update(store, cas=False)
        assert blind["lost"] == ["alice"] and blind["conflicts"] == 0
        careful = cc.lost_update(store, cas=True)
        assert careful["lost"] == [] and careful["conflicts"] == 1 and careful["final greeting"] == "team: alice bob"
    finally:
        store.delete_all()


def test_the_editor_validates_before_writing_and_the_table_shows_the_result(cluster):
    stores = {"consul": cc.lab_store(cluster, "consul")}
    editor = SettingsEditor(stores, cc.instances_of(cluster))
    assert editor.write("latency_ms", "lots").startswith("not written: latency_ms: must be an integer")
    assert "revision" in editor.write("signups_enabled", "false")
    cc.wait_applied(editor.instances, "signups_enabled", False)
    editor.refresh()
    assert "no" in editor.table.value
    stores["consul"].put("signups_enabled", "true")


def test_the_store_outage_keeps_settings_and_catches_up(cluster):
    instances = cc.instances_of(cluster)
    result = cc.store_outage(cluster, "consul", instances, cc.lab_store(cluster, "consul"), progress=None)
    assert result["kept"] and result["write_during_outage"].startswith("refused")
    assert result["seconds_to_notice"] > 0 and result["seconds_to_catch_up"] >= 0
    assert {s.state for s in cluster.status().services} == {"running"}


def test_the_exercise_solution_passes_and_wrong_answers_are_told_why(cluster):
    assert exercises.check(lesson_10.NAME, lesson_10.page_size_setting(), cluster=cluster).ok
    lenient = Setting("page_size", 20, int)
    verdict = exercises.check(lesson_10.NAME, lenient, cluster=cluster)
    assert not verdict.ok and "parse('0') returned 0" in verdict.message
    assert "expected a Setting" in exercises.check(lesson_10.NAME, None, cluster=cluster).message
