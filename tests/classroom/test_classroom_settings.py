"""A classroom's settings are checked before anything starts: a hub others can reach needs passwords of its own."""

from __future__ import annotations

import pytest

from lab_services.classroom.settings import HubSettings
from lab_services.core.errors import BadInputError

STRONG_ADMIN = "an instructor password of at least 32 chars"


@pytest.mark.parametrize("learner", ["", "password", "changeme", "Workshop"])
def test_a_hub_others_can_reach_refuses_an_empty_or_example_learner_password(learner, tmp_path):
    settings = HubSettings(tmp_path, ip="192.0.2.10", learner_password=learner, admin_password=STRONG_ADMIN)
    with pytest.raises(BadInputError, match=r"invalid argument: learner_password: a hub on 192\.0\.2\.10"):
        settings.validate()


def test_a_hub_others_can_reach_refuses_an_empty_admin_password(tmp_path):
    settings = HubSettings(tmp_path, ip="192.0.2.10", learner_password="room-password")
    with pytest.raises(BadInputError, match="invalid argument: admin_password"):
        settings.validate()


def test_on_loopback_the_hub_makes_up_passwords_jupyterhub_accepts(tmp_path):
    settings = HubSettings(tmp_path).validate()
    assert len(settings.learner_password) >= 8 and len(settings.admin_password) >= 32


def test_passwords_of_your_own_must_meet_jupyterhubs_lengths(tmp_path):
    with pytest.raises(BadInputError, match="admin_password: at least 32"):
        HubSettings(
            tmp_path, ip="192.0.2.10", learner_password="room-password", admin_password="short but new"
        ).validate()


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("ip", "localhost", "is not an IP address"),
        ("port", 0, "is not a port"),
        ("spawner", "kubernetes", "use one of local, docker"),
        ("net_prefix", "8.8", "a private /16"),
        ("first_slot", 999, "first_slot: 999"),
    ],
)
def test_each_bad_setting_is_named_with_why(field, value, words, tmp_path):
    with pytest.raises(BadInputError, match=f"invalid argument: {field}: .*{words}|{words}"):
        HubSettings(tmp_path, **{field: value}).validate()


def test_a_restart_keeps_the_passwords_and_what_the_instructor_chose_now_wins(tmp_path):
    first = HubSettings.for_instructor(tmp_path, port=8100).validate()
    first.save()
    again = HubSettings.for_instructor(tmp_path, port=8200)
    assert (again.learner_password, again.admin_password, again.api_token) == (
        first.learner_password,
        first.admin_password,
        first.api_token,
    )
    assert again.port == 8200
    assert (tmp_path / "settings.json").stat().st_mode & 0o077 == 0, "the passwords' file is its owner's alone"
