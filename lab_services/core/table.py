"""Show lists of dicts as tables: HTML in a notebook, aligned plain text in a terminal or a test log."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any


def html_table(
    rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None, markup: tuple[str, ...] = ()
) -> str:
    """An HTML table of `rows`, one column per key (the first row's keys unless `columns` is given).

    Values are escaped, except in the `markup` columns, which hold HTML the caller built (e.g. a coloured status).
    """
    rows = list(rows)
    columns = columns or (list(rows[0]) if rows else [])
    head = "".join(f"<th style='text-align:left;padding:2px 10px'>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td style='text-align:left;padding:2px 10px'>{_cell(r.get(c), c in markup)}</td>" for c in columns)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def text_table(rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None) -> str:
    """The same table as aligned plain text."""
    rows = list(rows)
    columns = columns or (list(rows[0]) if rows else [])
    cells = [[_text(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells]
    return "\n".join(lines)


class Table:
    """Rows (dicts) that display as a table; `rows` stays plain data, so lessons can assert on it."""

    def __init__(self, rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None):
        self.rows = [dict(r) for r in rows]
        self.columns = columns

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]

    def _repr_html_(self) -> str:
        return html_table(self.rows, self.columns)

    def __repr__(self) -> str:
        return text_table(self.rows, self.columns)


def _cell(value: Any, is_markup: bool) -> str:
    return str(value) if is_markup else escape(_text(value))


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
