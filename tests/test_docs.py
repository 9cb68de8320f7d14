"""The README and docs/ stay true: links resolve, every CLI command and option is documented, the README stays short.

Reads files and the CLI's argparse parser only; starts nothing.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from lab_services.cli import build_parser
from lab_services.core.paths import REPO_DIR

README = REPO_DIR / "README.md"
CLI_DOC = REPO_DIR / "docs" / "cli.md"
PAGES = [README, *sorted((REPO_DIR / "docs").rglob("*.md"))]
# The README is the front door: what the lab is, the ways in, two commands, the lessons, links. Detail goes to docs/.
README_MAX_LINES = 100

LINK = re.compile(r"!?\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO_DIR))


def _without_fences(text: str) -> str:
    """The text with fenced code blocks blanked out, keeping line numbers."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def _prose(text: str) -> str:
    """The text with code blocks and code spans blanked out (keeping line numbers), so `[--json]` is no link."""
    return CODE_SPAN.sub(lambda m: " " * len(m.group(0)), _without_fences(text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in _without_fences(path.read_text()).splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if not match:
            continue
        slug = _slug(match.group(1))
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _links(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in enumerate(_prose(path.read_text()).splitlines(), start=1):
        found.extend((number, m.group(1)) for m in LINK.finditer(line))
    return found


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_relative_link_points_at_a_file_that_exists(page: Path):
    broken = []
    for number, target in _links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: and the like are not checked here
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            broken.append(f"{_rel(page)}:{number}: {target} (no such file: {resolved})")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{_rel(page)}:{number}: {target} (no heading with anchor #{anchor} in {_rel(resolved)})")
    assert not broken, "broken links; fix the link or the heading:\n" + "\n".join(broken)


def test_the_link_check_sees_links_and_skips_code():
    # A check that finds no link would pass on any page: make sure it reads the README's links at all.
    targets = [target for _, target in _links(README)]
    assert "docs/cli.md" in targets and "docs/performance.md" in targets, targets
    assert not LINK.search(_prose("`up [--json](x)`\n```\n[a](b)\n```\n"))


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """Every long option of a command and of its own subcommands, except the ones every command has."""
    options = {s for a in parser._actions for s in a.option_strings if s.startswith("--")}
    for child in _subcommands(parser).values():
        options |= _options(child)
    return options - {"--help", "--backend"}


def _sections(text: str) -> dict[str, str]:
    """The `## ` sections of a page: heading line -> its text up to the next `## ` heading."""
    parts = re.split(r"^(## .*)$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


COMMANDS = _subcommands(build_parser())


def test_the_cli_has_the_commands_this_test_expects():
    # Guards the parsing above: if build_parser's shape changes, the tests below would check nothing.
    assert {"up", "down", "status", "bench", "config", "drill"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_and_its_options_are_in_docs_cli(name: str):
    sections = _sections(CLI_DOC.read_text())
    own = [body for heading, body in sections.items() if f"`{name}`" in heading]
    assert own, f"docs/cli.md has no `## ` heading naming `{name}` (`discovery-lab {name} --help` lists it)"
    body = "".join(own)
    missing = sorted(o for o in _options(COMMANDS[name]) if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", body))
    assert not missing, (
        f"docs/cli.md's section on `{name}` does not mention {missing}; see `discovery-lab {name} --help`"
    )
    for action in _subcommands(COMMANDS[name]):
        assert f"`{name} {action}" in body, f"docs/cli.md's section on `{name}` has no entry for `{name} {action}`"


def test_docs_cli_names_the_backend_option_every_command_takes():
    assert "--backend" in CLI_DOC.read_text() and "LAB_BACKEND" in CLI_DOC.read_text()


def test_readme_names_the_two_commands_and_stays_short():
    text = README.read_text()
    assert "make lab" in text and "make test" in text
    lines = text.count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (limit {README_MAX_LINES}): move detail into docs/ and link it"
    )


def test_every_make_target_the_docs_name_exists():
    makefile = (REPO_DIR / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.MULTILINE))
    missing, named = [], set()
    for page in PAGES:
        text = page.read_text()
        code = [m.group(0) for m in CODE_SPAN.finditer(_without_fences(text))]
        code += [line for block in FENCE.findall(text) for line in block.splitlines()]
        for snippet in code:
            # A command, not prose: `make lab`, `LAB_BACKEND=compose make lab`; "make a new one" in a message is not.
            command = re.match(r"(?:[A-Z_]+=\S*\s+)*make ([a-z][\w-]*)", snippet.strip("` \t"))
            if command:
                named.add(command.group(1))
                if command.group(1) not in targets:
                    missing.append(f"{_rel(page)}: make {command.group(1)}")
    assert {"lab", "test"} <= named, f"the check found only {sorted(named)}: it no longer reads the commands in code"
    assert not missing, "the docs name make targets the Makefile does not have:\n" + "\n".join(sorted(set(missing)))


def test_the_readme_lesson_table_lists_every_notebook():
    text = README.read_text()
    notebooks = sorted(p.stem for p in (REPO_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks, "no notebooks found"
    missing = [stem for stem in notebooks if f"| `{stem}` |" not in text]
    assert not missing, f"README.md's lesson table has no row for {missing}"
