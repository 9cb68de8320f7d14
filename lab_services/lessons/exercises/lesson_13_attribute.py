"""Lesson 13's second exercise: add an attribute of your own to the user service's spans and show it in the waterfall.

The learner writes `annotate(span, request)`, which the user instances run inside their SERVER span of every call
(`TracedSystem.annotate`), and `show(spans)`, which draws the waterfall with the attribute in each span's row. The
checker installs the hook, makes one real call through the gateway, reads the spans back from the OTLP receiver, and
looks for the attribute on the user's span, with the value of the request, and in the waterfall's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab_services.lessons.exercises.verdict import Verdict
from lab_services.lessons.tracing_lab import TracedSystem, plot_waterfall
from lab_services.service import user_pb2

NAME = "13-attribute"
ATTRIBUTE = "app.user.id"
# What the lab's own interceptor records on a SERVER span: anything else there came from the learner's hook.
LAB_KEYS = ("rpc.", "traceparent.received", "lab.instance")


def check(annotate: Any, show: Any, system: TracedSystem) -> Verdict:
    """13-attribute: `annotate(span, request)` sets `app.user.id` to the requested user's id on the user's SERVER span,
    and `show(spans)` returns the waterfall's Axes with that value in the span's row."""
    if not callable(annotate) or not callable(show):
        return Verdict(NAME, False, "define annotate(span, request) and show(spans), and pass both to the checker")
    raised: list[Exception] = []

    def guarded(span: Any, request: Any) -> None:
        if not isinstance(request, user_pb2.GetUserRequest):
            return  # Consul's gRPC health checks reach the same instances; the exercise is about GetUser
        try:
            annotate(span, request)
        except Exception as err:  # the call goes on; the verdict says what the learner's hook did
            raised.append(err)

    system.annotate(guarded)
    try:
        trace_id, code = system.call(name="show profile (annotated)")
        spans = system.trace(trace_id, 5)
    finally:
        system.annotate(None)
    if raised:
        return Verdict(NAME, False, f"annotate(span, request) raised {type(raised[0]).__name__}: {raised[0]}")
    user = next((s for s in spans if s.service == "user" and s.kind == "server"), None)
    if user is None:
        return Verdict(NAME, False, f"the call ended {code} and its trace has no user SERVER span to look at")
    wrong = _attribute_problem(user.attributes, system.user_id)
    if wrong:
        return Verdict(NAME, False, wrong)
    return _judge_waterfall(show, spans, system.user_id)


def _attribute_problem(attributes: dict[str, Any], user_id: str) -> str:
    """What is wrong with the user span's attributes ('' when app.user.id holds the requested id)."""
    value = attributes.get(ATTRIBUTE)
    if value is None:
        yours = {k: v for k, v in attributes.items() if not k.startswith(LAB_KEYS)}
        if yours:
            return f"the user's SERVER span carries {yours}, but no {ATTRIBUTE!r}: name the attribute exactly"
        return (
            "the user's SERVER span has no attribute of yours: annotate should call "
            f"span.set_attribute({ATTRIBUTE!r}, ...)"
        )
    if value != user_id:
        return f"{ATTRIBUTE} is {value!r}, but the call asked for user {user_id!r}: take it from the request it answers"
    return ""


def _judge_waterfall(show: Callable[[list], Any], spans: list, user_id: str) -> Verdict:
    ax = show(spans)
    if not hasattr(ax, "get_yticklabels"):
        return Verdict(NAME, False, f"show(spans) returned {ax!r}; return the Axes that tl.plot_waterfall(...) returns")
    rows = [t.get_text() for t in ax.get_yticklabels()]
    shown = [r for r in rows if user_id in r]
    if not shown:
        return Verdict(
            NAME,
            False,
            f"the user's span carries {ATTRIBUTE}={user_id}, but no row of the waterfall shows it (rows: {rows}); "
            "give tl.plot_waterfall a label= function that reads the attribute from each span",
        )
    return Verdict(
        NAME,
        True,
        f"the user instance's own span carries {ATTRIBUTE}={user_id}, set by your code in its process, and the "
        f"waterfall shows it: {shown[0].strip()!r}",
    )


def user_id_attribute() -> tuple[Callable[[Any, Any], None], Callable[[list], Any]]:
    """The two functions the exercise asks for, as the notebook passes them:
    `lab.check("13-attribute", *user_id_attribute(), system=system)`."""

    def annotate(span: Any, request: Any) -> None:
        # The request is GetUserRequest: which user was asked for is the attribute an on-call engineer filters by.
        span.set_attribute("app.user.id", request.id)

    def show(spans: list) -> Any:
        return plot_waterfall(spans, title="which user?", label=lambda span: span.attributes.get("app.user.id"))

    return annotate, show


# Graded help, revealed one at a time by lab.hints(NAME) before the solution itself.
HINTS = (
    (
        "An OpenTelemetry span takes attributes with `span.set_attribute(key, value)`. annotate is handed the user "
        "instance's SERVER span and the GetUserRequest it answers; `tl.plot_waterfall` takes a `label=` function, "
        "called with each span, whose answer is added to that span's row."
    ),
    (
        'annotate: `span.set_attribute("app.user.id", request.id)`. show: return '
        '`tl.plot_waterfall(spans, label=lambda s: s.attributes.get("app.user.id"))` (spans without it get no label).'
    ),
)

SOLUTION = user_id_attribute
