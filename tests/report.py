"""The suite's cost at a glance: `python tests/report.py JUNIT...` merges the runs' junit files into one and prints
each run's total and the slowest tests of all (a lesson also shows its slowest cells), so a slow test is seen
the day it lands.

    python tests/report.py test-artifacts/junit-local.xml test-artifacts/junit-compose.xml \
        --out test-artifacts/junit.xml
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from pathlib import Path


def cases(root: ET.Element) -> list[ET.Element]:
    return list(root.iter("testcase"))


def describe(case: ET.Element) -> str:
    name = f"{case.get('classname', '')}::{case.get('name', '')}".removeprefix("tests.")
    cells = [p.get("value") for p in case.iter("property") if p.get("name") == "slowest_cells"]
    return f"{name}  ({cells[0]})" if cells and cells[0] else name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, help="write the merged junit here")
    parser.add_argument("--slowest", type=int, default=25)
    args = parser.parse_args(argv)
    merged = ET.Element("testsuites")
    for path in args.junit:
        if not path.exists():
            print(f"report: {path} is missing (that run did not finish)")
            continue
        suites = list(ET.parse(path).getroot().iter("testsuite"))
        merged.extend(suites)
        seconds = sum(float(s.get("time", 0)) for s in suites)
        count = sum(len(cases(s)) for s in suites)
        print(f"report: {path.name}: {count} tests in {seconds / 60:.1f} min of wall time")
    everything = cases(merged)
    total = sum(float(c.get("time", 0)) for c in everything)
    print(
        f"report: {len(everything)} tests, {total / 60:.1f} min of test time in all "
        f"(parallel workers add up); slowest {args.slowest}:"
    )
    for case in sorted(everything, key=lambda c: -float(c.get("time", 0)))[: args.slowest]:
        print(f"{float(case.get('time', 0)):8.1f} s  {describe(case)}")
    if args.out:
        ET.ElementTree(merged).write(args.out, encoding="utf-8", xml_declaration=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
