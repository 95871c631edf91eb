"""What every runbook shares: steps with retries, bounded waits, custom status, and the report.

Deterministic by construction: time comes from the context, everything else from activities.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import azure.durable_functions as df
from pydantic import BaseModel

from shared.model import wire
from shared.outcome import Outcome
from shared.payloads import ReleaseLock
from shared.reports import Report, Status, StepRecord
from shared.runs import RunInput

Step = Generator[Any, Any, Any]
In = TypeVar("In", bound=RunInput)
# raised by the devhost to a run that must not resume blind after a host restart (function_app.py names them)
HOST_RESTARTED = "hostRestarted"
QUICK_POLL_SECONDS = 10.0  # a wait polls at its base interval at least this long before it backs off


class StepFailed(Exception):
    """A step failed after its retries, or a wait passed its deadline; the report names the step."""

    def __init__(self, step: str, message: str, answer: Any = None) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message
        self.answer = answer  # a wait's last answer


class Interrupted(StepFailed):
    """An event ended a wait early: `cancel` from an operator, `resolved` from Azure Monitor."""

    def __init__(self, step: str, event: str, data: Any) -> None:
        super().__init__(step, f"interrupted by a {event} event")
        self.event = event
        self.data = data


def first_line(error: BaseException) -> str:
    """The activity's own message, without the stack a host may append to it."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:500]


class Runbook(Generic[In]):
    """One run: its typed input (parsed once, at the start of each replay), its steps, its report."""

    def __init__(
        self, context: df.DurableOrchestrationContext, runbook: str, kind: type[In],
        interruptions: tuple[str, ...] = ("cancel",),
    ) -> None:
        self.context = context
        self.interruptions = interruptions
        self._events: dict[str, Any] = {}
        self._heard: set[str] = set()  # interruptions that already ended a wait
        self._pending_approval: dict[str, Any] | None = None
        self.input: In = kind.model_validate(context.get_input())
        self.options = self.input.options
        self.report = Report(operation_id=self.input.operation_id, runbook=runbook, cluster=self.input.cluster,
                             started_at=self.now.isoformat())

    @property
    def names(self) -> dict[str, str]:
        """The run's cluster, as the payload of the activities that need only its names."""
        return self.report.cluster.dump()

    @property
    def now(self) -> datetime:
        return self.context.current_utc_datetime

    @property
    def retry(self) -> df.RetryOptions:
        return df.RetryOptions(
            first_retry_interval_in_milliseconds=int(1000 * self.options.activity_retry_seconds),
            max_number_of_attempts=self.options.activity_attempts,
        )

    def record(self, name: str, outcome: str, started: datetime, detail: str = "", data: Any = None) -> None:
        self.report.steps.append(StepRecord(
            name=name, outcome=outcome, started_at=started.isoformat(),
            duration_seconds=round((self.now - started).total_seconds(), 3), detail=detail, data=data or None))
        self._publish(None)

    def _publish(self, current: str | None) -> None:
        status: dict[str, Any] = {
            "runbook": self.report.runbook,
            "step": current,
            "stepsDone": [f"{s.name}: {s.outcome}" for s in self.report.steps],
        }
        if self._pending_approval and current:
            status["pendingApproval"] = self._pending_approval
        self.context.set_custom_status(status)

    def note(self, name: str, outcome: str, detail: str) -> None:
        """A step the orchestrator decides by itself (no activity), recorded like the others."""
        self.record(name, outcome, self.now, detail)

    def step(self, name: str, activity: str, payload: Any, retry: bool = True, answer: type | None = None) -> Step:
        """Run one activity as a runbook step: its Outcome lands in the report and comes back typed (or the
        answer read as `answer`, for an activity that answers data, not an Outcome)."""
        started = self.now
        self._publish(name)
        payload = wire(payload)
        task = (self.context.call_activity_with_retry(activity, self.retry, payload) if retry
                else self.context.call_activity(activity, payload))
        try:
            result = yield from self._until_restarted(name, started, task)
        except Interrupted:
            raise
        except Exception as err:
            message = first_line(err)
            self.record(name, "failed", started, message)
            raise StepFailed(name, message) from None
        return self._record_result(name, started, result, answer)

    def _until_restarted(self, name: str, started: datetime, task: Any) -> Step:
        """A task's result; for a run the host interrupts after a restart (HOST_RESTARTED), the restart wins
        over the step it left open (the devhost does not run that step again: what it did is unknown)."""
        if HOST_RESTARTED not in self.interruptions or HOST_RESTARTED in self._heard:
            return (yield task)
        restarted = self.event(HOST_RESTARTED)
        winner = yield self.context.task_any([task, restarted])
        if winner is restarted:
            stop = self._interrupted(name, winner)
            self.record(name, "interrupted", started, "interrupted by a host restart")
            raise stop or StepFailed(name, "interrupted by a host restart")
        if faulted(task):
            raise task.result if isinstance(task.result, BaseException) else RuntimeError(str(task.result))
        return task.result

    def _record_result(self, name: str, started: datetime, result: Any, answer: type | None = None) -> Any:
        if answer is None and isinstance(result, dict) and "outcome" in result:
            outcome = Outcome.model_validate(result)
            self.record(name, outcome.outcome, started, outcome.detail, outcome.data)
            return outcome
        self.record(name, "done", started)
        return read_as(result, answer)

    def start(self, name: str, activity: str, payload: Any) -> Any:
        """An activity started under its own step's name and left running (a drill's write probe); its task."""
        self._publish(name)
        return self.context.call_activity(activity, wire(payload))

    def sub_run(self, name: str, runbook: str, run_input: Any, instance_id: str) -> Any:
        """Another runbook run as this run's step (under its lock); its task."""
        self._publish(name)
        return self.context.call_sub_orchestrator(runbook, wire(run_input), instance_id)

    def in_parallel(self, steps: list[tuple[str, str, Any]]) -> Step:
        """Independent steps fanned out at once; each lands in the report, the first failure fails the run."""
        started = self.now
        tasks = []
        for name, activity, payload in steps:
            self._publish(name)  # each task made under its own step's name (what a plan of the run lists)
            tasks.append(self.context.call_activity_with_retry(activity, self.retry, wire(payload)))
        self._publish(" + ".join(name for name, _, _ in steps))
        try:
            results = yield self.context.task_all(tasks)
        except Exception as err:
            failed = None
            for (name, _, _), task in zip(steps, tasks, strict=True):
                if task.is_completed and not faulted(task):
                    self._record_result(name, started, task.result)
                elif faulted(task) and failed is None:
                    failed = (name, first_line(task.result))
                    self.record(name, "failed", started, failed[1])
                else:
                    self.record(name, "not finished", started, "stopped when another step of its group failed")
            name, message = failed or (steps[0][0], first_line(err))
            raise StepFailed(name, message) from None
        return [self._record_result(name, started, result) for (name, _, _), result in zip(steps, results, strict=True)]

    def wait_until(
        self, name: str, activity: str, payload: Any, ready: Callable[[Any], bool],
        describe: Callable[[Any], str], timeout_seconds: float, required: bool = True,
        stalled: Callable[[Any], str | None] | None = None, patience_seconds: float = 0,
        watch_failure: bool = True, answer: type | None = None,
    ) -> Step:
        """Poll `activity` on a durable timer until `ready`; at the deadline fail the step, or when not
        `required` record it as timed out and return the last answer.

        The wait also ends, failed, as soon as an answer carries a `failure` (the platform's sign that success
        is impossible; unless `watch_failure` is off, for a wait that needs less than the whole cluster), and
        when `stalled` has named trouble on every answer for `patience_seconds` (a state the platform
        retries, such as WAL archiving failing): each quoted in the step. Answers are read as `answer`."""
        started = self.now
        deadline = started + timedelta(seconds=timeout_seconds)
        base = self.options.poll_seconds
        payload = wire(payload)
        self._publish(name)
        polls = 0
        stalled_since: datetime | None = None
        while True:
            try:
                result = read_as((yield from self._until_restarted(
                    name, started, self.context.call_activity_with_retry(activity, self.retry, payload))), answer)
            except Interrupted:
                raise
            except Exception as err:
                message = first_line(err)
                self.record(name, "failed", started, message)
                raise StepFailed(name, message) from None
            polls += 1
            if ready(result):
                self.record(name, "done", started, describe(result), {"polls": polls})
                return result
            trouble = stalled(result) if stalled else None
            stalled_since = (stalled_since or self.now) if trouble else None
            held = (self.now - stalled_since).total_seconds() if stalled_since else 0.0
            reason = (failure(result) if watch_failure else None) or (
                f"{trouble} (for {held:.0f}s, patience {patience_seconds:g}s)"
                if trouble and held >= patience_seconds else None)
            if reason:
                self.record(name, "failed", started, f"cannot succeed: {reason}", {"polls": polls})
                raise StepFailed(name, f"cannot succeed: {reason}", result)
            if self.now >= deadline:
                message = f"not ready after {timeout_seconds:g}s: {describe(result)}"
                if trouble:
                    message += f"; {trouble}"
                self.record(name, "failed" if required else "timed out", started, message)
                if required:
                    raise StepFailed(name, message, result)
                return result
            # quick for the first 20 polls and at least QUICK_POLL_SECONDS (at 0.25 s, twenty polls end at 5 s, as
            # a restore does: backing off then held each one ~1.5 s past its end); a long wait backs off to 10x,
            # so its history stays short
            quick = max(20, math.ceil(QUICK_POLL_SECONDS / base))
            poll = timedelta(seconds=base * min(10.0, 1.5 ** max(0, polls - quick)))
            try:
                yield from self.sleep(name, min(self.now + poll, deadline))
            except Interrupted as stop:
                self.record(name, "interrupted", started, f"{stop.event} event while waiting: {describe(result)}")
                raise

    def event(self, name: str) -> Any:
        """One wait per event name for the whole run, so an event raised at any moment is seen once."""
        if name not in self._events:
            self._events[name] = self.context.wait_for_external_event(name)
        return self._events[name]

    def canceled(self, operation_id: str) -> Step:
        """Whether a sub-run ended canceled (cancelled with its parent), as its stored report says."""
        status = yield self.context.call_activity_with_retry("report_status", self.retry, operation_id)
        return status == "canceled"

    def _race(self, until: datetime, tasks: list[Any]) -> Step:
        """The first of `tasks` to complete before `until`, or None when the durable timer fired first."""
        timer = self.context.create_timer(until)
        winner = yield self.context.task_any([timer, *tasks])
        if winner is timer:
            return None
        timer.cancel()
        return winner

    def _interrupted(self, step: str, winner: Any) -> Interrupted | None:
        """The Interrupted a winning event task stands for, if it is one of the run's interruptions."""
        for name in self.interruptions:
            if winner is self.event(name):
                self._heard.add(name)
                return Interrupted(step, name, event_data(winner.result))
        return None

    def stop_listening(self, *names: str) -> None:
        """From here on these interruptions (all, when none is named) end no wait: a compensation under way
        finishes what it undoes, a remedy under way finishes its act."""
        self._heard.update(names or self.interruptions)

    def sleep(self, step: str, until: datetime) -> Step:
        """A durable timer that the run's interruptions (cancel, resolved) end early with Interrupted; one already
        heard ends nothing more, so the compensation it started can wait for what it undoes."""
        listening = [self.event(name) for name in self.interruptions if name not in self._heard]
        winner = yield from self._race(until, listening)
        if winner is not None:
            raise self._interrupted(step, winner) or StepFailed(step, "ended by an unknown event")

    def approval(self, action: str, timeout_seconds: float) -> Step:
        """Wait for `approve` or `reject` (POST /api/operations/{id}/approve|reject) until the deadline.

        True only for an approval in time: no approval, no action."""
        started = self.now
        deadline = started + timedelta(seconds=timeout_seconds)
        self._pending_approval = {
            "action": action, "deadline": deadline.isoformat(),
            "approve": f"/api/operations/{self.input.operation_id}/approve",
            "reject": f"/api/operations/{self.input.operation_id}/reject",
        }
        self._publish(f"waiting for approval: {action}")
        approve, reject = self.event("approve"), self.event("reject")
        listening = [self.event(n) for n in self.interruptions if n not in self._heard]
        winner = yield from self._race(deadline, [approve, reject, *listening])
        self._pending_approval = None
        if winner is None:
            self.record("approval", "expired", started,
                        f"no approval for {action!r} within {timeout_seconds:g}s: nothing done")
            return False
        stop = self._interrupted("approval", winner)
        if stop is not None:
            self.record("approval", "interrupted", started,
                        f"{stop.event} event while waiting for approval of {action!r}")
            raise stop
        decided = "approved" if winner is approve else "rejected"
        self.record("approval", decided, started, f"{action!r} {decided}{_by(event_data(winner.result))}")
        return decided == "approved"

    def finish(self, error: BaseException | None, result: dict[str, Any] | None = None) -> Step:
        """Close the report, store it, release the cluster's lock, then post it to the caller's callback;
        runs at the end of every run. The report, as plain JSON."""
        if isinstance(error, Interrupted) and error.event == HOST_RESTARTED:
            error = StepFailed(error.step, "interrupted by a host restart")
        canceled = isinstance(error, Interrupted) and error.event == "cancel"
        status: Status = "canceled" if canceled else "failed" if error else "succeeded"
        said = (str(error) if isinstance(error, StepFailed) else first_line(error)) if error else None
        self.report.close(status, said, self.now, wire(result) if result else None)
        self._publish("store report")
        stored: Exception | None = None
        try:
            self.report.location = yield self.context.call_activity_with_retry(
                "store_report", self.retry, self.report.dump()
            )
        except Exception as err:  # not `finally`: a replay's abandoned generator must not yield again
            stored = err
        if self.input.owns_lock:  # a sub-orchestration runs under its parent's lock
            yield self.context.call_activity_with_retry("release_lock", self.retry, wire(ReleaseLock(
                **self.names, operation_id=self.input.lock_holder)))
        if self.input.callback and stored is None:
            # last: whoever the callback wakes finds the report stored and the cluster free
            yield from self._post_callback()
            yield self.context.call_activity_with_retry("store_report", self.retry, self.report.dump())
        self._publish(None)
        if stored is not None:
            raise stored
        return self.report.dump()

    def _post_callback(self) -> Step:
        """The caller's webhook gets the report; a dead receiver is reported, it does not fail the run."""
        started = self.now
        self._publish("post report to callback")
        try:
            answer = yield self.context.call_activity("post_report", self.report.dump())
            self.record("post report to callback", answer["outcome"], started, answer["detail"])
        except Exception as err:
            self.record("post report to callback", "failed", started, first_line(err))


def failure(answer: Any) -> str | None:
    """The platform's sign, in a polled answer (a ClusterStatus), that what the wait waits for cannot happen."""
    if isinstance(answer, dict):
        return answer.get("failure")
    return getattr(answer, "failure", None)


def read_as(answer: Any, kind: type | None) -> Any:
    """An activity's JSON answer read as the model the step expects (None stays None: nothing found)."""
    if kind is None or answer is None or not issubclass(kind, BaseModel):
        return answer
    if isinstance(answer, list):
        return [kind.model_validate(item) for item in answer]
    return kind.model_validate(answer)


def faulted(task: Any) -> bool:
    """Failed, in both engines' words: a completed task whose result is the exception."""
    return bool(task.is_completed) and isinstance(task.result, BaseException)


def event_data(value: Any) -> Any:
    """An event's payload: the Python client JSON-encodes it once more, so Functions delivers a string."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _by(decision: Any) -> str:
    """Who decided, as the approver said (a name or a mail address, never more than a line)."""
    if isinstance(decision, dict) and isinstance(decision.get("by"), str):
        return f" by {decision['by'][:100]}"
    return ""
