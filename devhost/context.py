"""azure-functions-durable's orchestration API on top of durabletask's engine.

The user's orchestrator is a Functions generator; `drive` runs it inside a durabletask generator and
translates in both directions: what it yields (tasks, task_any / task_all) and what it gets back
(results, the winning task, failures raised as Functions raises them). DURABLE_NOTES lists the gaps
closed here.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from typing import Any

from durabletask import task as dt


class FunctionsTask:
    """A task as Functions shows it: `.result` holds the exception of a failed task instead of raising."""

    def __init__(self, inner: dt.Task[Any]) -> None:
        self.inner = inner
        self.is_cancelled = False

    @property
    def is_completed(self) -> bool:
        return self.inner.is_complete

    @property
    def result(self) -> Any:
        if not self.inner.is_complete:
            return None
        if self.inner.is_failed:
            return functions_error(self.inner.get_exception())
        return self.inner.get_result()

    def cancel(self) -> None:
        """Functions cancels a losing timer; durabletask lets an outstanding timer lapse on its own."""
        self.is_cancelled = True


class AnyOf:
    def __init__(self, tasks: list[FunctionsTask]) -> None:
        self.tasks = tasks


class AllOf:
    def __init__(self, tasks: list[FunctionsTask]) -> None:
        self.tasks = tasks


def functions_error(err: BaseException) -> Exception:
    """Functions raises a plain Exception("<reason>\\n<details>") into the orchestrator."""
    if isinstance(err, dt.TaskFailedError):
        details = err.details
        return Exception(f"{details.message}\n{details.stack_trace or ''}".rstrip())
    return Exception(str(err))


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


class FunctionsContext:
    """The subset of DurableOrchestrationContext pgha's orchestrators use, with Functions' semantics."""

    def __init__(self, inner: dt.OrchestrationContext, orchestration_input: Any) -> None:
        self._inner = inner
        self._input = orchestration_input
        self._uuids = 0

    @property
    def instance_id(self) -> str:
        return self._inner.instance_id

    @property
    def is_replaying(self) -> bool:
        return self._inner.is_replaying

    @property
    def current_utc_datetime(self) -> datetime:
        return self._inner.current_utc_datetime.replace(tzinfo=UTC)

    @property
    def parent_instance_id(self) -> str | None:
        return self._inner.parent_instance_id

    def get_input(self) -> Any:
        return self._input

    def set_custom_status(self, status: Any) -> None:
        self._inner.set_custom_status(status)

    def new_uuid(self) -> str:
        self._uuids += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.instance_id}/{self.current_utc_datetime}/{self._uuids}"))

    def call_activity(self, name: str, input_: Any = None) -> FunctionsTask:
        return FunctionsTask(self._inner.call_activity(name, input=input_))

    def call_activity_with_retry(self, name: str, retry_options: Any, input_: Any = None) -> FunctionsTask:
        policy = dt.RetryPolicy(
            first_retry_interval=timedelta(milliseconds=retry_options.first_retry_interval_in_milliseconds),
            max_number_of_attempts=retry_options.max_number_of_attempts,
        )
        return FunctionsTask(self._inner.call_activity(name, input=input_, retry_policy=policy))

    def call_sub_orchestrator(self, name: str, input_: Any = None, instance_id: str | None = None) -> FunctionsTask:
        return FunctionsTask(self._inner.call_sub_orchestrator(name, input=input_, instance_id=instance_id))

    def create_timer(self, fire_at: datetime) -> FunctionsTask:
        return FunctionsTask(self._inner.create_timer(_naive_utc(fire_at)))

    def wait_for_external_event(self, name: str) -> FunctionsTask:
        return FunctionsTask(self._inner.wait_for_external_event(name))

    def task_any(self, activities: list[FunctionsTask]) -> AnyOf:
        return AnyOf(list(activities))

    def task_all(self, activities: list[FunctionsTask]) -> AllOf:
        return AllOf(list(activities))

    def continue_as_new(self, input_: Any) -> None:
        self._inner.continue_as_new(input_)


def _when_any(group: AnyOf) -> Generator[Any, Any, FunctionsTask]:
    winner = yield dt.when_any([t.inner for t in group.tasks])
    return next(t for t in group.tasks if t.inner is winner)


def _when_all(group: AllOf) -> Generator[Any, Any, list[Any]]:
    """Functions' task_all fails fast on the first failure; durabletask's would wait for every child."""
    pending = [t for t in group.tasks if not t.inner.is_complete]
    for done in group.tasks:
        if done.inner.is_failed:
            raise done.inner.get_exception()
    while pending:
        winner = yield dt.when_any([t.inner for t in pending])
        if winner.is_failed:
            raise winner.get_exception()
        pending = [t for t in pending if t.inner is not winner and not t.inner.is_complete]
    return [t.inner.get_result() for t in group.tasks]


def drive(user_fn: Callable[[FunctionsContext], Any], inner: dt.OrchestrationContext, orchestration_input: Any) -> Any:
    """A durabletask orchestrator that runs a Functions orchestrator generator."""
    result = user_fn(FunctionsContext(inner, orchestration_input))
    if not inspect.isgenerator(result):
        return result
    return (yield from _relay(result))


def _relay(user: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        try:
            yielded = user.throw(to_throw) if to_throw is not None else user.send(to_send)
        except StopIteration as stop:
            return stop.value
        to_send, to_throw = None, None
        try:
            if isinstance(yielded, AnyOf):
                to_send = yield from _when_any(yielded)
            elif isinstance(yielded, AllOf):
                to_send = yield from _when_all(yielded)
            elif isinstance(yielded, FunctionsTask):
                to_send = yield yielded.inner
            else:
                raise TypeError(f"an orchestrator yielded {type(yielded).__name__}, not a durable task")
        except dt.TaskFailedError as err:
            to_throw = functions_error(err)
