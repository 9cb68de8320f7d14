"""Every exercise's published solution passes its own checker, against the real lab a learner would use."""
from __future__ import annotations

import tempfile

import pytest

from lab_services.lessons import exercises
from lab_services.discovery import ConsulWatcher
from lab_services.resilience import retry_service_config
from lab_services.service import UserServer, user_pb2
from lab_services.tls import TLSMaterial


def solved(name: str, **scope) -> dict:
    exec(exercises.solution(name), scope)
    return scope


def test_03_canary(lab):
    status = lab.status()
    canary = lab.add_service(version="v2")
    try:
        with ConsulWatcher("user", status["consul"]["http"]) as watcher:
            assert watcher.wait_for(lambda xs: canary["name"] in {i.id for i in xs}, 10)
            verdict = exercises.check("03-canary", solved("03-canary")["canary_channel"], watcher=watcher)
        assert verdict, verdict.message
    finally:
        lab.restore()


def test_04_lease(lab):
    server = UserServer(name="exercise").start()
    try:
        verdict = exercises.check("04-lease", solved("04-lease")["register_with_lease"], server=server,
                                  endpoints=lab.status()["etcd"]["endpoints"])
        assert verdict, verdict.message
    finally:
        server.stop(grace=0)


def test_05_resume():
    verdict = exercises.check("05-resume", solved("05-resume", user_pb2=user_pb2)["next_request"])
    assert verdict, verdict.message


def test_06_mtls():
    with tempfile.TemporaryDirectory() as tmp:
        verdict = exercises.check("06-mtls", solved("06-mtls")["my_mtls_channel"], material=TLSMaterial.create(tmp))
    assert verdict, verdict.message


def test_07_retry():
    verdict = exercises.check("07-retry", solved("07-retry", retry_service_config=retry_service_config)["my_retry_config"])
    assert verdict, verdict.message


@pytest.mark.parametrize("name,answer", [("05-resume", None), ("06-mtls", None), ("07-retry", {"methodConfig": []})])
def test_a_wrong_answer_is_told_why(name, answer):
    kwargs = {"material": None} if name == "06-mtls" else {}
    verdict = exercises.check(name, answer, **kwargs)
    assert not verdict and verdict.message
