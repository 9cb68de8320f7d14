"""Lessons 00, 01, 04, 07, 12 and 15, headless with their solutions:
one of the three groups that run side by side (test_notebooks.py)."""

from test_notebooks import lesson_test

test_lesson_runs_with_solutions = lesson_test("a")
