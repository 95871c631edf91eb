"""durabletask's engine with function_app.py's orchestrators and activities registered by their Functions names."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
from durabletask import client as dtc
from durabletask import worker as dtw

from devhost.backend import Backend, DiskBackend
from devhost.context import drive
from shared.ports import free_ports
from shared.registry import registered

log = logging.getLogger("pgha.devhost")


@dataclass(frozen=True)
class AppFunctions:
    orchestrators: dict[str, Any]
    activities: dict[str, Callable[[Any], Any]]
    http: list[func.FunctionBuilder | Any]
    timers: list[Any]


def collect(app: func.FunctionApp) -> AppFunctions:
    """The app's functions by trigger type (orchestrators and activities as shared.registry reads them)."""
    orchestrators, activities = registered(app)
    http: list[Any] = []
    timers: list[Any] = []
    app.functions_bindings = {}  # type: ignore[attr-defined]  # get_functions() is not idempotent
    for function in app.get_functions():
        trigger = function.get_trigger()
        if trigger.type == "httpTrigger":
            http.append(function)
        elif trigger.type == "timerTrigger":
            timers.append(function)
    return AppFunctions(orchestrators, activities, http, timers)


def _orchestrator(name: str, user_fn: Any) -> Any:
    def orchestrator(ctx: Any, orchestration_input: Any) -> Any:
        return drive(user_fn, ctx, orchestration_input)

    orchestrator.__name__ = name
    return orchestrator


def _activity(name: str, call: Callable[[Any], Any]) -> Any:
    def activity(ctx: Any, activity_input: Any) -> Any:
        """Run the user's activity and log it as the Functions host does (names and durations, no payloads)."""
        log.info("Executing 'Functions.%s' (Reason='activity', Id=%s)", name, ctx.orchestration_id)
        started = time.monotonic()
        try:
            result = call(activity_input)
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
        except Exception as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            log.warning("Executed 'Functions.%s' (Failed, Duration=%.0fms): %s", name,
                        1000 * (time.monotonic() - started), first)
            raise
        log.info("Executed 'Functions.%s' (Succeeded, Duration=%.0fms)", name, 1000 * (time.monotonic() - started))
        return result

    activity.__name__ = name
    return activity


@dataclass(frozen=True)
class DurableLimits:
    """host.json's extensions.durableTask throttles, which the Functions host applies per instance; None is
    durabletask's own default (100 per core). Locally as on Azure, a drill's or switchover's write probe holds
    an activity slot while it runs: ten at once would leave none for their own steps."""

    activities: int | None = None
    orchestrators: int | None = None

    @classmethod
    def from_host_json(cls, path: Path) -> DurableLimits:
        try:
            durable = json.loads(path.read_text()).get("extensions", {}).get("durableTask", {})
        except FileNotFoundError:
            return cls()
        def limit(key: str) -> int | None:
            value = durable.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"host.json extensions.durableTask.{key} must be a positive integer, got {value!r}")
            return value

        return cls(activities=limit("maxConcurrentActivityFunctions"),
                   orchestrators=limit("maxConcurrentOrchestratorFunctions"))


class Engine:
    """Backend + worker + client, on a free port of its own."""

    def __init__(self, functions: AppFunctions, workers: int = 32, store: Path | None = None,
                 interrupt_on_restart: frozenset[str] = frozenset(), restart_event: str = "",
                 limits: DurableLimits | None = None) -> None:
        """With `store`, the engine's state is kept there (devhost/backend.py) and survives a restart."""
        self.functions = functions
        self.workers = workers
        self.limits = limits or DurableLimits()
        self.store = store
        self.interrupt_on_restart = interrupt_on_restart
        self.restart_event = restart_event
        self.backend: Any = None
        self.worker: dtw.TaskHubGrpcWorker | None = None
        self.client: dtc.TaskHubGrpcClient | None = None

    def start(self) -> None:
        (port,) = free_ports(1)
        self.backend = (DiskBackend(self.store, self.interrupt_on_restart, self.restart_event, port=port)
                        if self.store else Backend(port=port))
        self.backend.start()
        address = f"localhost:{port}"
        quiet = logging.getLogger("pgha.durabletask")
        quiet.setLevel(logging.ERROR)  # the worker warns on every normal stop
        self.worker = dtw.TaskHubGrpcWorker(
            host_address=address, logger=quiet,
            concurrency_options=dtw.ConcurrencyOptions(
                maximum_thread_pool_workers=self.workers,
                maximum_concurrent_activity_work_items=self.limits.activities,
                maximum_concurrent_orchestration_work_items=self.limits.orchestrators,
            ),
        )
        for name, fn in self.functions.orchestrators.items():
            self.worker.add_orchestrator(_orchestrator(name, fn))
        for name, call in self.functions.activities.items():
            self.worker.add_activity(_activity(name, call))
        self.worker.start()
        self.client = dtc.TaskHubGrpcClient(host_address=address, logger=quiet)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.client is not None:
            self.client.close()
        if self.backend is not None:
            self.backend.stop()
            if isinstance(self.backend, DiskBackend):
                self.backend.close()
        self.worker = self.client = self.backend = None

    # ---- what the Functions RPC routes need ------------------------------------------------------
    def start_new(self, name: str, instance_id: str | None, orchestration_input: Any) -> str:
        assert self.client is not None
        if name not in self.functions.orchestrators:
            raise KeyError(name)
        return self.client.schedule_new_orchestration(name, input=orchestration_input, instance_id=instance_id)

    def status(self, instance_id: str, show_input: bool = False) -> dict[str, Any] | None:
        """The instance as the Functions HTTP API shows it (runtimeStatus names are Functions')."""
        assert self.client is not None
        state = self.client.get_orchestration_state(instance_id)
        if state is None:
            return None
        runtime = {
            "RUNNING": "Running", "COMPLETED": "Completed", "FAILED": "Failed", "TERMINATED": "Terminated",
            "CONTINUED_AS_NEW": "ContinuedAsNew", "PENDING": "Pending", "SUSPENDED": "Suspended",
        }[state.runtime_status.name]
        output: Any = _loads(state.serialized_output)
        if state.failure_details is not None:
            output = state.failure_details.message
        body = {
            "name": state.name, "instanceId": state.instance_id,
            "createdTime": state.created_at.isoformat() + "Z",
            "lastUpdatedTime": state.last_updated_at.isoformat() + "Z",
            "output": output, "runtimeStatus": runtime, "customStatus": _loads(state.serialized_custom_status),
        }
        if show_input:
            body["input"] = _loads(state.serialized_input)
        return body

    def raise_event(self, instance_id: str, event: str, data: Any) -> None:
        assert self.client is not None
        self.client.raise_orchestration_event(instance_id, event, data=data)

    def terminate(self, instance_id: str, reason: str) -> None:
        assert self.client is not None
        self.client.terminate_orchestration(instance_id, output=reason)

    def history(self, instance_id: str) -> list[Any]:
        assert self.client is not None
        return self.client.get_orchestration_history(instance_id)

    def history_json(self, instance_id: str, with_payloads: bool) -> list[dict[str, Any]]:
        """The history as the Functions HTTP API's `showHistory` lists it (payloads with showHistoryOutput)."""
        events = []
        for event in self.history(instance_id):
            item: dict[str, Any] = {"EventType": type(event).__name__.removesuffix("Event")}
            for field in dataclasses.fields(event):
                value = getattr(event, field.name)
                if value is None or field.name.endswith("trace_context") or field.name == "orchestration_span_id":
                    continue
                if not with_payloads and field.name in ("input", "result"):
                    continue
                key = "".join(part.capitalize() for part in field.name.split("_"))
                item[key] = _plain(value)
            events.append(item)
        return events


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items() if v is not None}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _loads(raw: str | None) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw
