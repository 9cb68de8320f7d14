"""The stack's JupyterLab entry: the token a learner's URL carries, and how JupyterLab is started in its container."""

from __future__ import annotations

from lab_services.runtime.compose import jupyter


def test_a_token_from_env_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_JUPYTER_TOKEN", "class-of-2026")
    assert jupyter.token(tmp_path) == "class-of-2026"
    assert not (tmp_path / ".lab-jupyter-token").exists()


def test_a_made_token_is_kept_so_the_url_survives_a_restart(monkeypatch, tmp_path):
    monkeypatch.delenv("LAB_JUPYTER_TOKEN", raising=False)
    first = jupyter.token(tmp_path)
    assert len(first) == 48 and jupyter.token(tmp_path) == first
    assert (tmp_path / ".lab-jupyter-token").stat().st_mode & 0o777 == 0o600


def test_jupyterlab_listens_in_the_container_and_announces_the_published_url(tmp_path):
    argv = jupyter.argv(18888, "secret", tmp_path)
    assert "--ServerApp.ip=0.0.0.0" in argv and "--ServerApp.port=8888" in argv and "--no-browser" in argv
    assert f"--ServerApp.root_dir={tmp_path}" in argv and "--ServerApp.token=secret" in argv
    assert f"--ServerApp.custom_display_url=http://127.0.0.1:18888/lab/tree/{jupyter.FIRST_LESSON}" in argv
