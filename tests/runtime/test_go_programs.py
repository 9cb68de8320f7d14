"""The Go programs' build from Debian's packages: the toolchain is found or named, the generated code is current, the
Go tests pass, and a lab's `down` stops a Go service started beside it."""

from __future__ import annotations

import filecmp
import subprocess

import pytest
from labs import local_lab

from lab_services.lessons.go_fleet import GoInstance
from lab_services.runtime import go_programs, processes


def test_the_programs_build_and_the_generated_code_is_what_protoc_makes(tmp_path):
    built = go_programs.build()
    assert set(built) == {"user-service", "user-client"} and all(p.is_file() for p in built.values())
    generated = go_programs.generate(tmp_path)
    committed = sorted((go_programs.GO_SOURCE / "userpb").glob("*.go"))
    assert [p.name for p in generated] == [p.name for p in committed]
    stale = [p.name for p, q in zip(generated, committed, strict=True) if not filecmp.cmp(p, q, shallow=False)]
    assert not stale, f"go/userpb is not what protoc makes from protos/ now: {stale}; regenerate it"


def test_the_go_unit_tests_pass():
    packages = [f"{go_programs.MODULE}/etcdresolver", f"{go_programs.MODULE}/cmd/user-service"]
    out = go_programs.run_go(["test", *packages], "go test")
    assert [line.split()[0] for line in out.splitlines()] == ["ok", "ok"], out


def test_the_go_sources_are_gofmt_clean():
    gofmt = go_programs.toolchain().goroot / "bin" / "gofmt"
    unformatted = subprocess.run([str(gofmt), "-l", str(go_programs.GO_SOURCE)], capture_output=True, text=True)
    assert unformatted.returncode == 0 and not unformatted.stdout, f"run gofmt -w on: {unformatted.stdout}"


def test_a_missing_toolchain_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_GO_DIR", str(tmp_path))
    monkeypatch.setattr(go_programs, "SYSTEM_ROOT", tmp_path / "no-system")
    with pytest.raises(go_programs.MissingGoToolchainError, match=r"make go-programs.*apt-get install golang-go"):
        go_programs.toolchain()
    with pytest.raises(ValueError, match="the Go programs are user-service, user-client"):
        go_programs.program_path("user-server")


def test_an_image_without_the_go_sources_uses_the_programs_it_carries_or_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_GO_DIR", str(tmp_path))
    monkeypatch.setattr(go_programs, "GO_SOURCE", tmp_path / "no-checkout" / "go")
    with pytest.raises(go_programs.MissingGoToolchainError, match=r"not in .*rebuild the JupyterLab image.*`make lab`"):
        go_programs.program("user-service")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "user-service").write_bytes(b"built elsewhere")
    assert go_programs.program("user-service") == tmp_path / "bin" / "user-service"


def test_down_stops_a_go_service_started_beside_the_lab(tmp_path):
    with local_lab(tmp_path, consul_servers=0, etcd_members=1, services=0, prometheus=False) as lab:
        go = GoInstance(lab, registry="etcd").start()
        assert go.announcement()["registered"] == go.key
        pid = go.child.pid
    # local_lab has checked that no recorded process outlived `down`; the Go service's pid is gone too.
    assert not processes.is_alive(pid), go.tail()
