"""Lessons 03, 10, 11, 13 and 14, headless with their solutions:
one of the three groups that run side by side (test_notebooks.py)."""

from test_notebooks import lesson_test

test_lesson_runs_with_solutions = lesson_test("c")
