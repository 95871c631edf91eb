"""The devhost's task hub on disk: an engine stopped mid-run (its worker gone before it answered) and a new
engine on the same store carry the runs on: activities again, timers re-armed, events delivered; a run
named to be interrupted fails its open step and gets the restart event instead."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest

from devhost.backend import DiskBackend
from devhost.engine import Engine, collect

app = df.DFApp()
runs: dict[str, int] = {}
gate = threading.Event()


@app.activity_trigger(input_name="name")
def counted(name: str) -> str:
    runs[name] = runs.get(name, 0) + 1
    gate.wait(10)  # held until the test lets it go (the first engine is stopped before that)
    return f"ran {name}"


@app.orchestration_trigger(context_name="context")
def step_then_timer_then_event(context: df.DurableOrchestrationContext) -> Any:
    first = yield context.call_activity("counted", context.instance_id)
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=1))
    approval = yield context.wait_for_external_event("Approve")
    return {"first": first, "approval": approval}


@app.orchestration_trigger(context_name="context")
def interrupted_on_restart(context: df.DurableOrchestrationContext) -> Any:
    """As a runbook the host interrupts: every step races the restart event (orchestrations/runbook.py)."""
    restarted = context.wait_for_external_event("hostRestarted")
    step = context.call_activity_with_retry("counted", df.RetryOptions(100, 3), context.instance_id)
    winner = yield context.task_any([step, restarted])
    if winner is step:
        return {"step": step.result}
    undo = yield context.call_activity("counted", f"{context.instance_id}-undo")  # its compensation
    return {"interrupted": winner.result, "undo": undo}


def engine(store: Path) -> Engine:
    made = Engine(collect(app), workers=4, store=store, interrupt_on_restart=frozenset({"interrupted_on_restart"}),
                  restart_event="hostRestarted")
    made.start()
    return made


def crash(made: Engine) -> None:
    """The store's side of a crash: the backend goes first, so nothing the worker still does is recorded."""
    made.backend.stop()
    made.backend.close()
    gate.set()
    made.backend = None
    made.stop()


def wait(made: Engine, instance: str, status: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = made.status(instance)
        if found and found["runtimeStatus"] == status:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{instance} not {status}: {made.status(instance)}")


def until(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_run_goes_on_in_a_new_engine_on_the_same_store(tmp_path: Path) -> None:
    gate.clear()
    first = engine(tmp_path / "hub.sqlite")
    instance = first.start_new("step_then_timer_then_event", None, None)
    until(lambda: runs.get(instance) == 1)  # the activity runs, and is never answered: its worker goes
    crash(first)
    gate.clear()
    second = engine(tmp_path / "hub.sqlite")
    try:
        assert instance in second.backend.resumed
        until(lambda: runs.get(instance) == 2)  # at least once: run again
        gate.set()
        until(lambda: (second.status(instance) or {}).get("runtimeStatus") == "Running" and bool(
            second.history(instance)) and any("Timer" in type(e).__name__ for e in second.history(instance)))
        second.raise_event(instance, "Approve", {"by": "me"})  # before the crash, while the timer runs
        time.sleep(0.3)
        crash(second)
        time.sleep(1.2)  # the timer comes due while no engine runs
        third = engine(tmp_path / "hub.sqlite")
        try:
            begun = time.monotonic()
            done = wait(third, instance, "Completed")
            assert done["output"] == {"first": f"ran {instance}", "approval": {"by": "me"}}
            assert time.monotonic() - begun < 3, "a timer due during the crash fires at once"
        finally:
            third.stop()
    finally:
        second.stop()


def test_a_run_named_to_be_interrupted_is_not_replayed_blind(tmp_path: Path) -> None:
    gate.clear()
    first = engine(tmp_path / "hub.sqlite")
    instance = first.start_new("interrupted_on_restart", None, None)
    until(lambda: runs.get(instance) == 1)
    crash(first)
    second = engine(tmp_path / "hub.sqlite")
    try:
        done = wait(second, instance, "Completed")
        assert done["output"] == {"interrupted": "interrupted by a host restart", "undo": f"ran {instance}-undo"}
        assert runs[instance] == 1  # the open step was not run again, retry policy or not
    finally:
        second.stop()


def test_a_run_that_had_not_started_is_not_interrupted(tmp_path: Path) -> None:
    gate.set()
    first = engine(tmp_path / "hub.sqlite")
    first.worker.stop()  # nothing picks the run up: it is stored, never started
    instance = first.start_new("interrupted_on_restart", None, None)
    crash(first)
    second = engine(tmp_path / "hub.sqlite")
    try:
        assert wait(second, instance, "Completed")["output"] == {"step": f"ran {instance}"}
    finally:
        second.stop()


def test_one_engine_at_a_time_per_store(tmp_path: Path) -> None:
    first = engine(tmp_path / "hub.sqlite")
    try:
        with pytest.raises(RuntimeError, match="another devhost holds the task hub"):
            DiskBackend(tmp_path / "hub.sqlite", port=1)
    finally:
        first.stop()
