"""The glossary speaks the learners' Chinese terms: the ones the reference articles use, spelled as they do."""

from __future__ import annotations

import pytest

from lab_services.core.paths import REPO_DIR

GLOSSARY = (REPO_DIR / "docs" / "instructor" / "glossary.md").read_text()
TERMS = [
    "健康 / 警告 / 不健康",
    "关闭 / 打开 / 半开",
    "预定义查询",
    "stale 读",
    "服务注册与发现",
    "解析器",
    "下线",
    "降级",
    "长连接",
    "限流",
]


@pytest.mark.parametrize("term", TERMS)
def test_the_glossary_has_the_term(term):
    assert term in GLOSSARY, f"docs/instructor/glossary.md has no {term!r}"


def test_every_row_names_where_the_lab_shows_it():
    rows = [line for line in GLOSSARY.splitlines() if line.startswith("| ") and not line.startswith("| English")]
    missing = [row.split("|")[1].strip() for row in rows if not row.rstrip(" |").split("|")[-1].strip()]
    assert rows and not missing, f"glossary rows without a lesson: {missing}"
