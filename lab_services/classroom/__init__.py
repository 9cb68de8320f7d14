"""The classroom: one JupyterHub gives every learner their own lab in a browser tab, and the instructor a board.

A library part: it uses the runtime and core, never the lessons (the lessons' reporter lives in `lessons/`).
"""
