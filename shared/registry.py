"""A Functions app's orchestrators and activities by their Functions names: the very functions the host
runs, for the devhost that runs them and for a plan that walks them."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any


def registered(app: Any) -> tuple[dict[str, Any], dict[str, Callable[[Any], Any]]]:
    """The app's orchestrators (their generator functions) and activities (called with their payload), by
    their Functions names: the very functions the host runs."""
    app.functions_bindings = {}  # get_functions() is not idempotent
    orchestrators: dict[str, Any] = {}
    activities: dict[str, Callable[[Any], Any]] = {}
    for function in app.get_functions():
        trigger, user = function.get_trigger(), function.get_user_function()
        if trigger.type == "orchestrationTrigger":
            orchestrators[function.get_function_name()] = getattr(user, "orchestrator_function", user)
        elif trigger.type == "activityTrigger":
            activities[function.get_function_name()] = partial(_call, user, trigger.name)
    return orchestrators, activities


def _call(user: Callable[..., Any], input_name: str, payload: Any) -> Any:
    return user(**{input_name: payload})
