"""The Logic App samples in docs/logic-apps: well-formed workflow definitions whose every call to pgha
is a real route and method of function_app.py, carrying the function key from a secure parameter."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devhost.server import route_pattern

SAMPLES = sorted((Path(__file__).parents[2] / "docs" / "logic-apps").glob("*.json"))
BASE = "@{parameters('pghaBaseUrl')}"
EXPRESSION = re.compile(r"@\{[^{}]*(\{[^{}]*\}[^{}]*)*\}")


def routes() -> list[tuple[str, re.Pattern[str]]]:
    import function_app

    function_app.app.functions_bindings = {}  # get_functions() is not idempotent
    found = []
    for function in function_app.app.get_functions():
        trigger = function.get_trigger()
        if trigger.type == "httpTrigger":
            found += [(str(getattr(m, "value", m)).upper(), route_pattern(trigger.route)) for m in trigger.methods]
    return found


def actions(scope: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every action with the scope it sits in, nested If / Scope branches included."""
    for name, action in scope.items():
        yield name, action, scope
        yield from actions(action.get("actions", {}))
        yield from actions(action.get("else", {}).get("actions", {}))


def pgha_calls(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, action, _ in actions(definition["actions"]):
        inputs = action.get("inputs", {})
        if action["type"] == "Http":
            candidates = [inputs]
        elif action["type"] == "HttpWebhook":
            candidates = [inputs["subscribe"], inputs["unsubscribe"]]
        else:
            continue
        yield from ((name, call) for call in candidates if call["uri"].startswith(BASE))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_sample_is_a_workflow_definition(sample: Path) -> None:
    definition = json.loads(sample.read_text())["definition"]
    assert definition["$schema"].endswith("/2016-06-01/workflowdefinition.json#")
    assert definition["triggers"] and definition["actions"]
    for name, action, scope in actions(definition["actions"]):
        assert set(action.get("runAfter", {})) <= set(scope), f"{name} runs after an action outside its scope"
    for name, parameter in definition["parameters"].items():
        if "key" in name.lower() or "webhookurl" in name.lower():
            assert parameter["type"] == "SecureString", f"{name} holds a secret"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_every_pgha_call_is_a_real_route_with_the_key(sample: Path) -> None:
    definition = json.loads(sample.read_text())["definition"]
    table = routes()
    calls = list(pgha_calls(definition))
    assert calls, f"{sample.name} calls pgha"
    for name, call in calls:
        path = EXPRESSION.sub("x", call["uri"][len(BASE):].split("?")[0])
        assert any(method == call["method"] and pattern.match(path) for method, pattern in table), (
            f"{sample.name}: {name} calls {call['method']} {path}, which is not a route of function_app.py")
        assert call["headers"]["x-functions-key"] == "@{parameters('pghaKey')}", f"{name} sends the key"


def test_samples_cover_what_teams_wire_up() -> None:
    called = set()
    for sample in SAMPLES:
        for _, call in pgha_calls(json.loads(sample.read_text())["definition"]):
            called.add((call["method"], EXPRESSION.sub("x", call["uri"][len(BASE):].split("?")[0])))
    assert {("POST", "/api/clusters"), ("POST", "/api/subscriptions"), ("DELETE", "/api/subscriptions"),
            ("POST", "/api/operations/x/approve"), ("POST", "/api/operations/x/reject"),
            ("GET", "/api/operations/x")} <= called
    subscribe = json.loads((SAMPLES[0].parent / "verify-backups-webhook.json").read_text())["definition"]
    body = subscribe["actions"]["Verify_backups_and_wait"]["inputs"]["subscribe"]["body"]
    assert body["callbackUrl"] == "@{listCallbackUrl()}" and body["operation"] == "verifyBackups"
