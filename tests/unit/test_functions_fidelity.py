"""function_app.py as the Functions host sees it: its bindings, and the real executor's actions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df

import function_app
from devhost.engine import collect
from shared.spec import ClusterSpec

HTTP_ROUTES = {
    "start_deploy": ("clusters", ["POST"]),
    "get_cluster": ("clusters/{name}", ["GET"]),
    "start_teardown": ("clusters/{name}", ["DELETE"]),
    "get_operation": ("operations/{id}", ["GET"]),
    "get_report": ("operations/{id}/report", ["GET"]),
    "start_backup_verification": ("clusters/{name}/backups", ["POST"]),
    "start_restore": ("clusters/{name}/restores", ["POST"]),
    "start_failover_drill": ("clusters/{name}/drills/failover", ["POST"]),
    "start_switchover": ("clusters/{name}/switchover", ["POST"]),
    "start_update": ("clusters/{name}", ["PATCH"]),
    "start_rotation": ("clusters/{name}/credentials/rotate", ["POST"]),
    "receive_alert": ("alerts", ["POST"]),
    "approve_operation": ("operations/{id}/approve", ["POST"]),
    "reject_operation": ("operations/{id}/reject", ["POST"]),
    "cancel_operation": ("operations/{id}/cancel", ["POST"]),
    "subscribe": ("subscriptions", ["POST"]),
    "unsubscribe": ("subscriptions/{id}", ["DELETE"]),
    "unsubscribe_by_callback": ("subscriptions", ["DELETE"]),
    "openapi": ("openapi.json", ["GET"]),
    "health": ("health", ["GET"]),
    "doctor": ("doctor", ["GET", "POST"]),
    "dashboard": ("dashboard", ["GET"]),
}
ANONYMOUS = {"health"}  # for load balancers; every other route wants a function key


def functions() -> dict[str, Any]:
    function_app.app.functions_bindings = {}  # get_functions() is not idempotent
    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def test_every_trigger_has_the_right_bindings() -> None:
    found = functions()
    for name, (route, methods) in HTTP_ROUTES.items():
        trigger = found[name].get_trigger()
        assert trigger.type == "httpTrigger"
        assert trigger.route == route
        assert [str(m.value) for m in trigger.methods] == methods
        assert str(trigger.auth_level.value).lower() == ("anonymous" if name in ANONYMOUS else "function")
        kinds = {b.type for b in found[name].get_bindings()}
        assert "http" in kinds
    for starter in ("start_deploy", "start_teardown", "get_operation", "start_backup_verification", "start_restore"):
        assert "durableClient" in {b.type for b in found[starter].get_bindings()}
    for orchestrator in ("deploy_cluster", "teardown_cluster", "verify_backups", "restore_cluster"):
        assert found[orchestrator].get_trigger().type == "orchestrationTrigger"
    activities = {n for n, f in found.items() if f.get_trigger().type == "activityTrigger"}
    assert {"apply_cluster", "get_cluster_status", "store_report", "release_lock", "ensure_app_secret"} <= activities
    assert set(collect(function_app.app).orchestrators) == {
        "deploy_cluster", "teardown_cluster", "verify_backups", "restore_cluster", "failover_drill",
        "switchover_cluster", "update_cluster", "rotate_credentials", "respond_to_alert", "compensate_run"}
    http = {n for n, f in found.items() if f.get_trigger().type == "httpTrigger"}
    assert http == set(HTTP_ROUTES), "every HTTP function is described here"


def test_the_periodic_timer() -> None:
    timer = functions()["run_schedules"]
    trigger = timer.get_trigger()
    assert trigger.type == "timerTrigger" and trigger.schedule == "0 * * * * *"
    assert "durableClient" in {b.type for b in timer.get_bindings()}


def test_function_json_is_what_the_host_reads() -> None:
    found = functions()
    raw = json.loads(found["start_deploy"].get_function_json())
    bindings = {b["type"]: b for b in raw["bindings"]}
    assert bindings["httpTrigger"]["route"] == "clusters"
    assert bindings["httpTrigger"]["authLevel"].lower() == "function"
    assert bindings["durableClient"]["name"] == "client"


# ---- the real azure-functions-durable executor, fed host-style history ---------------------------

START = datetime(2026, 1, 1, tzinfo=UTC)
# the spec as the starter writes it into the run's input: validated, every field dumped
SPEC = ClusterSpec.model_validate({"name": "db", "namespace": "default", "instances": 3}).dump()
INPUT = {"operationId": "deploy-default-db-x", "namespace": "default", "name": "db", "spec": SPEC,
         "options": {"activityAttempts": 3, "activityRetrySeconds": 2, "pollSeconds": 2, "readyTimeoutSeconds": 60}}


def event(kind: int, event_id: int, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"EventType": kind, "EventId": event_id, "IsPlayed": False, "Timestamp": at.isoformat(), **fields}


def started_history() -> list[dict[str, Any]]:
    return [
        event(12, -1, START),
        event(0, -1, START, Name="deploy_cluster", Input=json.dumps(INPUT), Version=""),
    ]


def execute(history: list[dict[str, Any]]) -> dict[str, Any]:
    handle = functions()["deploy_cluster"].get_user_function()
    context = json.dumps({
        "history": history, "instanceId": INPUT["operationId"], "isReplaying": False, "parentInstanceId": None,
        "input": json.dumps(INPUT), "upperSchemaVersion": 1,
    })
    return json.loads(handle(context))


def complete(history: list[dict[str, Any]], event_id: int, name: str, result: Any, at: datetime) -> None:
    history += [
        event(4, event_id, at, Name=name),
        event(13, -1, at),
        event(12, -1, at + timedelta(milliseconds=5)),
        event(5, -1, at + timedelta(milliseconds=5), TaskScheduledId=event_id, Result=json.dumps(result)),
    ]


def actions(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every action the executor emitted, compound ones (a retried call is one, schema v1) opened up."""
    found: list[dict[str, Any]] = []

    def walk(action: dict[str, Any]) -> None:
        found.append(action)
        for inner in action.get("compoundActions", []):
            walk(inner)

    for group in state["actions"]:
        for action in group:
            walk(action)
    return found


def test_executor_emits_the_first_steps_of_deploy() -> None:
    history = started_history()
    first = execute(history)
    assert first["isDone"] is False
    [preflight] = actions(first)
    assert preflight["actionType"] == 0  # CallActivity: the pre-flight is never retried
    assert preflight["functionName"] == "preflight"
    assert json.loads(preflight["input"]) == SPEC
    assert first["customStatus"]["step"] == "pre-flight"

    settled = {**SPEC, "backup": {**SPEC["backup"], "method": "plugin"}}
    complete(history, 0, "preflight", {"outcome": "done", "detail": "CNPG 1.30.0", "data": {"spec": settled}}, START)
    second = execute(history)
    destination = actions(second)[-1]
    assert destination["functionName"] == "preflight_backup_destination"
    assert json.loads(destination["input"]) == settled, "the run goes on with the spec the pre-flight settled"
    complete(history, 1, "preflight_backup_destination", {"outcome": "done", "detail": "empty"}, START)
    second = execute(history)
    *_, compound, namespace = actions(second)
    assert compound["actionType"] == 12  # schema v1 wraps a retried call in a compound action
    assert namespace["actionType"] == 1  # CallActivityWithRetry
    assert namespace["functionName"] == "ensure_namespace"
    assert namespace["retryOptions"]["maxNumberOfAttempts"] == 3
    assert namespace["retryOptions"]["firstRetryIntervalInMilliseconds"] == 2000
    assert second["customStatus"]["stepsDone"] == ["validate spec: done", "pre-flight: done",
                                                   "backup destination pre-flight: done"]


def test_executor_fails_the_run_and_still_stores_the_report() -> None:
    history = started_history()
    history += [
        event(4, 0, START, Name="preflight"),
        event(13, -1, START),
        event(12, -1, START),
        event(6, -1, START, TaskScheduledId=0, Reason="archive not empty", Details="PreflightFailed"),
    ]
    state = execute(history)
    store = actions(state)[-1]
    assert store["functionName"] == "store_report"
    assert store["actionType"] == 1
    report = json.loads(store["input"])
    assert report["status"] == "failed"
    assert report["steps"][-1]["name"] == "pre-flight"
    assert report["steps"][-1]["outcome"] == "failed"
    assert "archive not empty" in report["error"]
    assert df  # the package the executor comes from


def test_the_runbook_reads_failure_as_functions_tasks_tell_it() -> None:
    """Functions' tasks have `is_completed` and `result` (the exception when failed), no `is_faulted`."""
    from azure.durable_functions.models.actions.CallActivityAction import CallActivityAction
    from azure.durable_functions.models.Task import AtomicTask

    from orchestrations.runbook import faulted

    failed = AtomicTask(0, CallActivityAction("verify_monitoring", None))
    succeeded = AtomicTask(1, CallActivityAction("check_zone_spread", None))
    running = AtomicTask(2, CallActivityAction("check_wal_archiving", None))
    failed.set_value(is_error=True, value=Exception("scrape failed"))
    succeeded.set_value(is_error=False, value={"outcome": "done"})
    assert not hasattr(failed, "is_faulted")
    assert (faulted(failed), faulted(succeeded), faulted(running)) == (True, False, False)
