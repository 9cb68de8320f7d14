"""The classroom: one JupyterHub gives every learner their own lab in a browser tab, and the instructor a board.

A library part: it uses the runtime and core, never the lessons (the lessons' reporter lives in `lessons/`).
"""

# Names the board (`board.py`), the learners' server extension (`server_extension.py`) and the lessons' reporter
# (`lessons/reporter.py`) share, kept here so none of them loads another to learn them.
SERVICE_NAME = "progress"  # the board's name among the hub's services: it answers under /services/progress/
BOARD_URL_ENV = "LAB_BOARD_URL"  # a learner's kernel reads the board's API base here; unset means report nothing
RESET_PATH = "lab-classroom/reset"  # under a learner's server prefix: POST resets their lab
