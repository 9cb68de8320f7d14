"""Try a list of wrong inputs and tabulate how each was refused: lessons teach validation by its messages.

lab.refusals({"six attempts": dict(max_attempts=6)}, lab.retry_service_config, ValueError, label="mistake")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lab_services.core.table import Table


def refusals(
    changes: Mapping[str, Mapping[str, Any]],
    attempt: Callable[..., object],
    refused_with: type[Exception],
    label: str = "attempt",
) -> Table:
    """Call `attempt(**change)` for each named change; a row per refusal, with the error's field and reason when it
    names them (RegistrationError) or its message. An accepted change gets no row, so a check that counts rows
    notices it."""
    rows = []
    for name, change in changes.items():
        try:
            attempt(**change)
        except refused_with as err:
            why = {"field": err.field, "reason": err.reason} if hasattr(err, "field") else {"error": str(err)}
            rows.append({label: name, **why})
    return Table(rows)
