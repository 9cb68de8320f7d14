"""The instructor kit (docs/instructor/) stays in step with the lessons that exist and with the reference articles.

The lesson list comes from notebooks/, so a lesson added there makes these tests ask for its kit entries: a row in
the kit's lesson list, its minutes in the timing plan (and the total), a slot in the two-day agenda, a section in the
talking points, and a row in troubleshooting's per-lesson table. Reads files only; starts nothing.

The reference articles are not part of the repository: the article-map tests read them from LAB_REFERENCE_ARTICLES
(default ../shared/reference beside the checkout, where the project keeps them) and are skipped, saying so, where
they are absent.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path

import pytest

from lab_services.core.paths import REPO_DIR
from lab_services.lessons import capstone, config_centre, inside_consul, tracing_lab
from lab_services.lessons.measured import Expected

KIT = REPO_DIR / "docs" / "instructor"
NOTEBOOKS = sorted((REPO_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LESSONS = [p.name[:2] for p in NOTEBOOKS]
# The articles the map covers, by its own `## NNN · title` headings (file names start with NNN_).
MAPPED = re.findall(r"^## (\d{3}) · ", (KIT / "article-map.md").read_text(), flags=re.MULTILINE)

TIME_SLOT = re.compile(r"^\| (\d{1,2}):(\d\d)-(\d{1,2}):(\d\d) \| ([^|]*)\|")
LESSON_AT_START = re.compile(r"^(\d\d)\b")


def _read(name: str) -> str:
    return (KIT / name).read_text()


def _sections(text: str, level: str = "## ") -> dict[str, str]:
    """Headings of one level -> their text, up to the next heading of that level or above."""
    marks = "#" * (len(level) - 1)
    parts = re.split(rf"^({marks} .*)$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def _table_rows(text: str) -> list[list[str]]:
    """Every markdown table row of `text`, as its stripped cells (separator rows left out)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"^\|[\s:|-]+\|$", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _headings(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    return [
        line.lstrip("#").strip()
        for c in cells
        if c["cell_type"] == "markdown"
        for line in "".join(c["source"]).splitlines()
        if line.startswith("#")
    ]


HEADINGS = {p.name[:2]: _headings(p) for p in NOTEBOOKS}


def _reference_dir() -> Path:
    directory = Path(
        os.environ.get("LAB_REFERENCE_ARTICLES") or Path(__file__).resolve().parents[2] / "shared" / "reference"
    )
    if not directory.is_dir():
        pytest.skip(f"the reference articles are not here ({directory}); set LAB_REFERENCE_ARTICLES to their folder")
    return directory


def _article(number: str) -> Path:
    found = sorted(_reference_dir().glob(f"{number}_*.txt"))
    assert len(found) == 1, f"expected one article {number}_*.txt in {_reference_dir()}, found {found}"
    return found[0]


def test_there_are_lessons():
    assert LESSONS and sorted(set(LESSONS)) == LESSONS, LESSONS


def test_the_article_map_covers_every_reference_article():
    articles = sorted(p.name[:3] for p in _reference_dir().glob("[0-9][0-9][0-9]_*.txt"))
    assert articles and articles == MAPPED, f"article-map.md has sections for {MAPPED}; the articles are {articles}"


# -- the lesson list, the timing plan and the agendas --------------------------------------------------------------
def test_the_kits_lesson_list_names_every_notebook_and_no_other():
    listed = {row[1].strip("`") for row in _table_rows(_sections(_read("README.md"))["## The lessons"])[1:]}
    assert listed == {p.stem for p in NOTEBOOKS}, (
        f"docs/instructor/README.md's lesson list differs from notebooks/: missing "
        f"{sorted({p.stem for p in NOTEBOOKS} - listed)}, extra {sorted(listed - {p.stem for p in NOTEBOOKS})}"
    )


def _minutes() -> dict[str, int]:
    """Lesson -> minutes with a room, from the timing plan's table."""
    table = _sections(_read("timing-plan.md"))["## Minutes per lesson"]
    return {
        row[0]: int(re.match(r"\d+", row[2]).group(0)) for row in _table_rows(table) if re.fullmatch(r"\d\d", row[0])
    }


def test_the_timing_plan_has_minutes_for_every_lesson():
    minutes = _minutes()
    assert sorted(minutes) == LESSONS, (
        f"timing-plan.md's table has rows for {sorted(minutes)}; the notebooks are {LESSONS}: add a row per lesson"
    )


def test_the_timing_plans_total_is_the_sum_of_its_rows():
    minutes = _minutes()
    total = re.search(r"^All (\d+) lessons: \*\*(\d+) minutes\*\*", _read("timing-plan.md"), flags=re.MULTILINE)
    assert total, "timing-plan.md has no line 'All N lessons: **M minutes**' under its table"
    assert (int(total.group(1)), int(total.group(2))) == (len(minutes), sum(minutes.values())), (
        f"timing-plan.md says {total.group(0)!r}; the rows make {len(minutes)} lessons and {sum(minutes.values())} "
        "minutes"
    )


def _agendas() -> dict[str, list[list[tuple[int, int, str]]]]:
    """Agenda heading -> its tables -> (start minute, end minute, what) per row."""
    found = {}
    for heading, body in _sections(_read("timing-plan.md")).items():
        if not heading.startswith("## Agenda"):
            continue
        tables, current = [], []
        for line in [*body.splitlines(), ""]:
            slot = TIME_SLOT.match(line)
            if slot:
                h1, m1, h2, m2 = (int(g) for g in slot.groups()[:4])
                current.append((60 * h1 + m1, 60 * h2 + m2, slot.group(5).strip()))
            elif current and not line.startswith("|"):
                tables.append(current)
                current = []
        found[heading] = tables
    return found


def test_there_are_agendas_for_90_minutes_half_a_day_a_full_day_and_two_days():
    names = " ".join(_agendas()).lower()
    for length in ("90 minutes", "half a day", "full day", "two days"):
        assert length in names, f"timing-plan.md has no '## Agenda …' heading for {length}"


def test_every_agenda_runs_without_gaps_or_overlaps():
    for heading, tables in _agendas().items():
        assert tables, f"{heading} has no table of time slots"
        for table in tables:
            for (start, end, what), (next_start, _, following) in itertools.pairwise(table):
                assert start < end, f"{heading}: the slot for {what!r} ends before it starts"
                assert end == next_start, f"{heading}: {what!r} ends at a different time than {following!r} starts"


def _lesson_slots(tables: list[list[tuple[int, int, str]]]) -> dict[str, list[int]]:
    slots: dict[str, list[int]] = {}
    for table in tables:
        for start, end, what in table:
            lesson = LESSON_AT_START.match(what)
            if lesson:
                slots.setdefault(lesson.group(1), []).append(end - start)
    return slots


def test_agendas_name_only_lessons_that_exist_and_fit_them_in_their_minutes():
    minutes = _minutes()
    for heading, tables in _agendas().items():
        for lesson, lengths in _lesson_slots(tables).items():
            assert lesson in minutes, f"{heading} names lesson {lesson}, which has no notebook"
            assert sum(lengths) <= minutes[lesson], (
                f"{heading} gives lesson {lesson} {sum(lengths)} minutes, more than its {minutes[lesson]}"
            )


@pytest.mark.parametrize("which", ["full day", "two days"])
def test_the_full_and_two_day_agendas_give_each_lesson_its_full_minutes(which: str):
    [(heading, tables)] = [(h, t) for h, t in _agendas().items() if which in h.lower()]
    minutes = _minutes()
    slots = _lesson_slots(tables)
    short = {lesson: (sum(lengths), minutes[lesson]) for lesson, lengths in slots.items()}
    assert all(given == needed for given, needed in short.values()), f"{heading}: (given, needed) {short}"
    if which == "two days":
        assert sorted(slots) == LESSONS, f"{heading} must teach every lesson; it has {sorted(slots)}, not {LESSONS}"


def test_the_agenda_check_reads_time_slots():
    # Guards the parsing: a table the regex never matches would leave every agenda test above checking nothing.
    assert TIME_SLOT.match("| 09:10-09:25 | 00 welcome | |").groups()[:4] == ("09", "10", "09", "25")
    slots = _lesson_slots(next(t for h, t in _agendas().items() if "two days" in h.lower()))
    assert "00" in slots and "14" in slots


# -- per lesson: talking points and troubleshooting ---------------------------------------------------------------
def _lesson_sections(name: str) -> dict[str, str]:
    """Lesson number -> its `## NN · title` section in a kit page."""
    return {m.group(1): body for h, body in _sections(_read(name)).items() if (m := re.match(r"## (\d\d) · ", h))}


def test_the_talking_points_have_a_section_for_every_lesson_with_each_part():
    sections = _lesson_sections("talking-points.md")
    assert sorted(sections) == LESSONS, f"talking-points.md has sections for {sorted(sections)}, not {LESSONS}"
    parts = (
        "**Talking points**",
        "**Ask the room**",
        "**Stage demo**",
        "**Expected figures**",
        "**Check your understanding**",
    )
    missing = {n: [p for p in parts if p not in body] for n, body in sections.items()}
    assert not any(missing.values()), (
        f"talking-points.md sections lacking parts: { {n: m for n, m in missing.items() if m} }"
    )


def test_troubleshooting_has_a_recovery_row_for_every_lesson():
    per_lesson = next(body for h, body in _sections(_read("troubleshooting.md")).items() if "Per lesson" in h)
    rows = {row[0]: row for row in _table_rows(per_lesson) if re.fullmatch(r"\d\d", row[0])}
    assert sorted(rows) == LESSONS, f"troubleshooting.md's per-lesson table has {sorted(rows)}, not {LESSONS}"
    without_command = [n for n, row in rows.items() if "`" not in row[-1]]
    assert not without_command, f"per-lesson rows whose recovery is not a command: {without_command}"


def test_the_cheat_sheet_covers_lessons_12_and_13():
    text = _read("cheat-sheet.md")
    headings = [h for h in _sections(text)]
    for lesson in ("12", "13"):
        assert any(lesson in h for h in headings), f"cheat-sheet.md has no section naming lesson {lesson}"


def test_the_kit_points_only_at_a_trace_viewer_the_lab_has():
    compose = (REPO_DIR / "compose" / "docker-compose.yml").read_text().lower()
    if "jaeger" in compose:
        return
    for page in ("README.md", "timing-plan.md", "talking-points.md", "cheat-sheet.md", "troubleshooting.md"):
        assert "jaeger" not in _read(page).lower(), f"{page} points at Jaeger, which the lab does not run"
    assert "plot_waterfall" in _read("talking-points.md"), "the talking points should show lesson 13's waterfall"


def test_the_kit_speaks_only_of_the_project():
    for page in sorted(KIT.glob("*.md")):
        text = page.read_text()
        assert not re.search(r"\bissue \d+|/work/|DESIGN\.md", text), f"{page.name} refers to the project's internals"


# -- the article map ----------------------------------------------------------------------------------------------
CHAPTER = re.compile(r"^(第.章)")
NUMBERED = re.compile(r"^(\d+\.\d+) ")


def _article_sections(article: Path) -> list[str]:
    """An article's sections as the map must name them: every numbered section ('2.1'), and every chapter ('第一章')
    that has no numbered sections of its own (its text is the section)."""
    found, chapter, numbered = [], None, False
    for line in article.read_text().splitlines():
        line = line.strip()
        if CHAPTER.match(line):
            if chapter and not numbered:
                found.append(chapter)
            chapter, numbered = CHAPTER.match(line).group(1), False
        elif NUMBERED.match(line):
            numbered = True
            found.append(NUMBERED.match(line).group(1))
    if chapter and not numbered:
        found.append(chapter)
    return found


def _map_rows(number: str) -> list[list[str]]:
    [body] = [b for h, b in _sections(_read("article-map.md")).items() if h.startswith(f"## {number} ·")]
    return [row for row in _table_rows(body) if row[0] != "section"]


@pytest.mark.parametrize("number", MAPPED)
def test_the_article_map_has_a_row_for_every_section_of_the_article(number: str):
    article = _article(number)
    sections = _article_sections(article)
    assert len(sections) >= 10, f"read only {sections} from {article.name}: the heading parser no longer fits"
    rows = [row[0] for row in _map_rows(number)]
    missing = [s for s in sections if not any(r.startswith(f"{s} ") for r in rows)]
    assert not missing, f"article-map.md's table for {number} has no row for sections {missing}"


@pytest.mark.parametrize("number", MAPPED)
def test_every_article_map_row_points_to_lesson_sections_that_exist(number: str):
    assert _map_rows(number), f"article-map.md's section {number} has no table rows"
    problems = []
    for row in _map_rows(number):
        refs = [part.strip() for part in row[1].split(";")]
        lessons = [(m.group(1), part) for part in refs if (m := LESSON_AT_START.match(part))]
        if not lessons:
            problems.append(f"{row[0]}: names no lesson ({row[1]!r})")
        problems += [
            f"{row[0]}: separate lessons with ';' ({part!r})" for part in refs if re.search(r"^\d\d,|, \d\d\b", part)
        ]
        for lesson, part in lessons:
            if lesson not in HEADINGS:
                problems.append(f"{row[0]}: lesson {lesson} has no notebook")
                continue
            numbers = {h.split(".")[0] for h in HEADINGS[lesson] if re.match(r"\d+\. ", h)}
            problems += [f"{row[0]}: {lesson} has no §{k}" for k in re.findall(r"§(\d+)", part) if k not in numbers]
            problems += [
                f"{row[0]}: {lesson} has no heading {name!r}"
                for name in re.findall(r'"([^"]+)"', part)
                if not any(name in h for h in HEADINGS[lesson])
            ]
    assert not problems, f"article-map.md, {number}:\n" + "\n".join(problems)


# -- the figures the lessons print ----------------------------------------------------------------------------------
def _printed_ranges() -> dict[str, list[Expected]]:
    """Lesson -> the ranges its "What you saw" table prints, with the lesson's default parameters."""
    return {
        "10": [
            config_centre.FIRST_WRITE,
            *config_centre.PROPAGATION.values(),
            *config_centre.OUTAGE_NOTICE.values(),
            *config_centre.CATCH_UP.values(),
        ],
        "12": [
            inside_consul.GOSSIP,
            inside_consul.LEAVE_PASSING,
            inside_consul.FULL_SYNC,
            inside_consul.RELOAD,
            inside_consul.FAILOVER,
            inside_consul.STALE,
            inside_consul.NO_LEADER,
        ],
        "13": [
            tracing_lab.ONE_CALL,
            tracing_lab.FAILED_ATTEMPT,
            tracing_lab.RETRIED_CALL,
            *tracing_lab.deadline_figures(0.3),
        ],
        "14": capstone.reference_figures(capstone.SLO()),
    }


@pytest.mark.parametrize("lesson", ["10", "12", "13", "14"])
def test_the_talking_points_quote_the_ranges_the_lesson_prints(lesson: str):
    # An instructor reads a learner's table against the kit: the two must give the same ranges.
    section = _lesson_sections("talking-points.md")[lesson]
    figures = section[section.index("**Expected figures**") :]
    missing = [f"{e.what}: {e.range_text}" for e in _printed_ranges()[lesson] if e.range_text not in figures]
    assert not missing, f"talking-points.md's expected figures for {lesson} do not quote: {missing}"
