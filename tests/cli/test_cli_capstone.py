"""`discovery-lab capstone run` on stage: learners' files, the reference and the naive client through the real chaos
run, one after another, in one table; a file that does not import or defines no client gets its row and reason."""

from __future__ import annotations

import inspect
import json
import textwrap

from lab_services.cli import main
from lab_services.lessons.exercises import lesson_14
from lab_services.runtime import open_cluster, processes
from lab_services.runtime.config import ClusterConfig


def test_capstone_run_grades_each_client_in_one_table(tmp_path, monkeypatch, capsys):
    state = tmp_path / "state"
    monkeypatch.setenv("LAB_STATE_DIR", str(state))
    # The chaos run restarts killed instances on their ports: away from the ports other labs on the machine pick first.
    monkeypatch.setenv("LAB_PORT_OFFSET", "18000")
    assert main(["capstone", "run", "--naive"]) == 2
    assert "no lab is running" in capsys.readouterr().err

    alice = tmp_path / "alice.py"  # a learner who wrote the reference client
    alice.write_text(
        "from __future__ import annotations\nfrom typing import Callable\n\n"
        + textwrap.dedent(inspect.getsource(lesson_14.resilient_client)).replace(
            "def resilient_client", "def build_client"
        )
    )
    (tmp_path / "bob.py").write_text("import no_such_module_for_the_capstone\n")
    (tmp_path / "carol.py").write_text("def make_client(consul_http):\n    return None\n")
    lab = open_cluster(state, "local")
    lab.launch(
        ClusterConfig(
            consul_servers=3, etcd_members=0, services=3, prometheus=False, registry="consul", consul_clients=3
        )
    )
    try:
        files = [str(tmp_path / f"{who}.py") for who in ("alice", "bob", "carol")]
        assert main(["capstone", "run", *files, "--naive", "--duration", "16", "--json"]) == 0
        out = capsys.readouterr()
        rows = {row["who"]: row for row in json.loads(out.out)}
        assert list(rows) == [*files, "naive"]
        assert rows[files[0]]["verdict"] == "PASS", rows[files[0]]
        assert (
            rows[files[0]]["success ratio"] >= 0.97
            and rows[files[0]]["sent to removed"] == 0
            and rows[files[0]]["why"] == ""
        )
        assert (
            rows[files[1]]["verdict"] == "ERROR"
            and "bob.py does not import: ModuleNotFoundError" in rows[files[1]]["why"]
        )
        assert rows[files[1]]["sent to removed"] is None, "a client that never ran has no numbers"
        assert (
            rows[files[2]]["verdict"] == "ERROR"
            and "carol.py defines no function build_client" in rows[files[2]]["why"]
        )
        naive = rows["naive"]
        assert naive["verdict"] == "FAIL" and "success ratio >= 97%" in naive["why"] and "no outage" in naive["why"]
        assert naive["longest outage s"] > 3
        assert "kill user-1" in out.err, "the faults are shown as they happen"
        assert {p.state for p in lab.status().processes} == {"running"}, "the chaos run put the lab back"

        # The plain table: one line per client with its verdict; bad arguments are refused before any chaos.
        assert main(["capstone", "run", files[1]]) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split()[:2] == ["who", "success"] and "ERROR" in table[1] and "does not import" in table[1]
        assert main(["capstone", "run"]) == 2
        assert "give learners' files" in capsys.readouterr().err
        assert main(["capstone", "run", "--naive", "--duration", "5"]) == 2
        assert "duration: 5.0 s; the faults run until 11.0 s" in capsys.readouterr().err
    finally:
        lab.down()
    assert processes.live_records(state) == []
