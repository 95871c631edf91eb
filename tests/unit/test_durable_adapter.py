"""The devhost's adapter gives Functions' orchestration semantics on durabletask's engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import pytest

from devhost.engine import Engine, collect
from orchestrations.runbook import faulted

app = df.DFApp()
calls: dict[str, int] = {}
lock = threading.Lock()


def count(name: str) -> int:
    with lock:
        calls[name] = calls.get(name, 0) + 1
        return calls[name]


@app.activity_trigger(input_name="payload")
def always_fails(payload: str) -> None:
    count(f"always_fails:{payload}")
    raise RuntimeError(f"boom {payload}")


@app.activity_trigger(input_name="seconds")
def slow(seconds: float) -> str:
    time.sleep(seconds)
    return f"slept {seconds}"


@app.activity_trigger(input_name="value")
async def echo_async(value: Any) -> Any:
    return value


@app.orchestration_trigger(context_name="context")
def any_with_failure(context: df.DurableOrchestrationContext) -> Any:
    failing = context.call_activity("always_fails", "any")
    timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=30))
    winner = yield context.task_any([failing, timer])
    timer.cancel()
    return {
        "winnerIsFailing": winner is failing,
        "resultType": type(winner.result).__name__,
        "resultMessage": str(winner.result).splitlines()[0],
        "isFaulted": faulted(winner),  # as the runbooks ask it: Functions' tasks have no is_faulted
        "tzAware": context.current_utc_datetime.tzinfo is not None,
    }


@app.orchestration_trigger(context_name="context")
def catches_failure(context: df.DurableOrchestrationContext) -> Any:
    try:
        yield context.call_activity("always_fails", "caught")
    except Exception as err:
        return {"type": type(err).__name__, "message": str(err).splitlines()[0]}
    return {"type": None}


@app.orchestration_trigger(context_name="context")
def retries(context: df.DurableOrchestrationContext) -> Any:
    try:
        yield context.call_activity_with_retry("always_fails", df.RetryOptions(100, 3), "retried")
    except Exception:
        return "failed after retries"
    return "succeeded"


@app.orchestration_trigger(context_name="context")
def all_fails_fast(context: df.DurableOrchestrationContext) -> Any:
    slow_task = context.call_activity("slow", 4)
    try:
        yield context.task_all([slow_task, context.call_activity("always_fails", "all")])
    except Exception as err:
        return {"slowCompleted": slow_task.is_completed, "message": str(err).splitlines()[0]}
    return {"slowCompleted": True}


@app.orchestration_trigger(context_name="context")
def all_in_order(context: df.DurableOrchestrationContext) -> Any:
    results = yield context.task_all([context.call_activity("echo_async", n) for n in range(5)])
    event = yield context.wait_for_external_event("Approve")
    return {"results": results, "event": event, "input": context.get_input()}


@app.orchestration_trigger(context_name="context")
def parent_of_slow(context: df.DurableOrchestrationContext) -> Any:
    return (yield context.call_sub_orchestrator("slow_child", 1.5, f"{context.instance_id}-child"))


@app.orchestration_trigger(context_name="context")
def slow_child(context: df.DurableOrchestrationContext) -> Any:
    return (yield context.call_activity("slow", context.get_input()))


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = Engine(collect(app))
    engine.start()
    yield engine
    engine.stop()


def run(engine: Engine, name: str, payload: Any = None, timeout: float = 30) -> dict[str, Any]:
    instance = engine.start_new(name, None, payload)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = engine.status(instance)
        if status and status["runtimeStatus"] not in ("Running", "Pending"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"{name} did not finish")


def test_functions_are_registered_under_their_functions_names(engine: Engine) -> None:
    assert set(engine.functions.orchestrators) >= {"any_with_failure", "catches_failure", "retries"}
    assert engine.functions.activities["slow"](0) == "slept 0"  # called with its payload under its binding name


def test_task_any_returns_the_winner_whose_result_is_the_exception(engine: Engine) -> None:
    out = run(engine, "any_with_failure")["output"]
    assert out == {
        "winnerIsFailing": True, "resultType": "Exception", "resultMessage": "boom any", "isFaulted": True,
        "tzAware": True,
    }


def test_failures_are_raised_into_the_generator_as_plain_exception(engine: Engine) -> None:
    out = run(engine, "catches_failure")["output"]
    assert out == {"type": "Exception", "message": "boom caught"}


def test_retry_options_count_total_attempts(engine: Engine) -> None:
    assert run(engine, "retries")["output"] == "failed after retries"
    assert calls["always_fails:retried"] == 3


def test_task_all_fails_fast(engine: Engine) -> None:
    out = run(engine, "all_fails_fast")["output"]
    assert out == {"slowCompleted": False, "message": "boom all"}


def test_task_all_keeps_order_and_events_arrive(engine: Engine) -> None:
    instance = engine.start_new("all_in_order", None, {"x": 1})
    time.sleep(0.5)
    engine.raise_event(instance, "Approve", {"by": "me"})
    deadline = time.monotonic() + 10
    while (status := engine.status(instance))["runtimeStatus"] != "Completed":
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert status["output"] == {"results": [0, 1, 2, 3, 4], "event": {"by": "me"}, "input": {"x": 1}}


def test_unknown_orchestrator_is_refused(engine: Engine) -> None:
    with pytest.raises(KeyError):
        engine.start_new("nope", None, None)


def test_a_sub_orchestration_longer_than_the_watchers_slice_still_reaches_its_parent(engine: Engine) -> None:
    """Upstream's watcher gave up after 30 s and the parent waited for ever (a verification whose restore test
    took 30 s hung): the watch now goes on in slices, here shortened below the child's run."""
    engine.backend.slice_seconds = 0.3
    try:
        assert run(engine, "parent_of_slow", timeout=20)["output"] == "slept 1.5"
    finally:
        engine.backend.slice_seconds = 30.0
