"""A runbook's plan, derived from the runbook itself: its orchestrator is run on a context that answers
each activity at once, so the steps a plan lists are the steps the run takes, in its order.

Nothing here touches a platform: `answer` (the caller's) decides what each activity answers, and events
never arrive (no cancel, no approval: a plan is the run that goes through).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

Answer = Callable[[str, str, Any], Any]  # (step, activity, payload) -> the activity's answer


class Refused(BaseException):
    """The plan stops where the run would: an answer refused (a pre-flight's FAIL); `reason` is its error."""

    def __init__(self, reason: Exception) -> None:
        super().__init__(str(reason))
        self.reason = reason


@dataclass
class PlanTask:
    """A task that is complete as soon as it is made (or never, for an event)."""

    result: Any = None
    is_completed: bool = True
    is_cancelled: bool = False

    def cancel(self) -> None:
        self.is_cancelled = True


@dataclass
class Group:
    tasks: list[PlanTask]
    any: bool


@dataclass
class PlanningContext:
    """The slice of DurableOrchestrationContext a Runbook uses, answering at once."""

    run_input: dict[str, Any]
    answer: Answer
    now: datetime
    step: str | None = None
    activities: list[tuple[str, str]] = field(default_factory=list)

    @property
    def current_utc_datetime(self) -> datetime:
        return self.now

    @property
    def instance_id(self) -> str:
        return str(self.run_input.get("operationId", ""))

    def get_input(self) -> dict[str, Any]:
        return self.run_input

    def set_custom_status(self, status: dict[str, Any]) -> None:
        self.step = status.get("step")  # none between steps: an activity started then is named for itself

    def call_activity(self, name: str, payload: Any = None) -> PlanTask:
        self.activities.append((self.step or name, name))
        self.now += timedelta(milliseconds=1)
        try:
            return PlanTask(self.answer(self.step or name, name, payload))
        except Exception as err:
            raise Refused(err) from err

    def call_activity_with_retry(self, name: str, retry: Any, payload: Any = None) -> PlanTask:
        return self.call_activity(name, payload)

    def call_sub_orchestrator(self, name: str, payload: Any = None, instance_id: str | None = None) -> PlanTask:
        return self.call_activity(name, payload)

    def create_timer(self, at: datetime) -> PlanTask:
        self.now = max(self.now, at)
        return PlanTask()

    def wait_for_external_event(self, name: str) -> PlanTask:
        return PlanTask(is_completed=False)

    def task_any(self, tasks: list[PlanTask]) -> Group:
        return Group(tasks, any=True)

    def task_all(self, tasks: list[PlanTask]) -> Group:
        return Group(tasks, any=False)


def walk(orchestrator: Callable[[Any], Generator[Any, Any, Any]], context: PlanningContext) -> Any:
    """Drive the orchestrator to its end on the planning context; its output (a runbook's report)."""
    run = orchestrator(context)
    sent: Any = None
    failed: BaseException | None = None
    while True:
        try:
            yielded = run.throw(failed) if failed is not None else run.send(sent)
        except StopIteration as end:
            return end.value
        failed = None
        if isinstance(yielded, Group):
            done = [task for task in yielded.tasks if task.is_completed]
            sent = done[0] if yielded.any else [task.result for task in yielded.tasks]
        else:
            sent = yielded.result
            if isinstance(sent, BaseException):
                failed, sent = sent, None
