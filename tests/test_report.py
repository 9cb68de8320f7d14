"""The suite's cost report: both runs' junit files merged, the slowest tests listed, a lesson with its slowest cells."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import report


def junit(path, *cases: tuple[str, float, str]) -> None:
    suite = ET.SubElement(ET.Element("testsuites"), "testsuite", time=str(sum(c[1] for c in cases)))
    for name, seconds, cells in cases:
        case = ET.SubElement(suite, "testcase", classname="tests.test_x", name=name, time=str(seconds))
        if cells:
            ET.SubElement(ET.SubElement(case, "properties"), "property", name="slowest_cells", value=cells)
    ET.ElementTree(suite).write(path)


def test_two_runs_merge_into_one_report_slowest_first(tmp_path, capsys):
    junit(tmp_path / "local.xml", ("test_fast", 0.5, ""), ("test_lesson[09]", 110.0, "cell 19: 55.1 s"))
    junit(tmp_path / "compose.xml", ("test_compose", 30.0, ""))
    assert (
        report.main(
            [
                str(tmp_path / "local.xml"),
                str(tmp_path / "compose.xml"),
                str(tmp_path / "gone.xml"),
                "--out",
                str(tmp_path / "all.xml"),
                "--slowest",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert f"report: {tmp_path / 'gone.xml'} is missing (that run did not finish)" in out
    assert out[-2:] == ["   110.0 s  test_x::test_lesson[09]  (cell 19: 55.1 s)", "    30.0 s  test_x::test_compose"]
    assert len(list(ET.parse(tmp_path / "all.xml").getroot().iter("testcase"))) == 3
