"""The generated gRPC code in lab_services/_proto is current, and a stale copy is caught."""

from __future__ import annotations

import shutil
import subprocess
import sys

from lab_services import protogen
from lab_services.core.paths import REPO_DIR


def test_committed_code_is_current():
    result = subprocess.run(
        [sys.executable, "-m", "lab_services.protogen", "--check"],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_stale_code_is_named(tmp_path):
    copy = tmp_path / "_proto"
    shutil.copytree(protogen.OUT_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    pb2 = copy / "lab/user/v1/user_service_pb2.py"
    pb2.write_text(pb2.read_text() + "# edited by hand\n")
    (copy / "lab/user/v1/extra_pb2.py").write_text("")
    (copy / "lab/user/v1/user_service_pb2_grpc.py").unlink()
    assert protogen.stale_files(copy) == [
        "lab/user/v1/extra_pb2.py",
        "lab/user/v1/user_service_pb2.py",
        "lab/user/v1/user_service_pb2_grpc.py",
    ]


def test_generated_imports_point_inside_the_package():
    text = (protogen.OUT_DIR / "lab/user/v1/user_service_pb2_grpc.py").read_text()
    assert "from lab_services._proto.lab.user.v1 import user_service_pb2" in text
    assert "\nfrom lab." not in text and "\nimport lab." not in text
