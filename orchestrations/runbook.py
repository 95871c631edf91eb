"""What every runbook shares: steps with retries, bounded waits, custom status, and the report.

Deterministic by construction: time comes from the context, everything else from activities.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

Step = Generator[Any, Any, Any]


class StepFailed(Exception):
    """A step failed after its retries, or a wait passed its deadline; the report names the step."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message


def first_line(error: BaseException) -> str:
    """The activity's own message, without the stack a host may append to it."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:500]


class Runbook:
    def __init__(self, context: df.DurableOrchestrationContext, runbook: str) -> None:
        self.context = context
        self.input: dict[str, Any] = context.get_input()
        self.options: dict[str, float] = self.input.get("options", {})
        cluster = {"namespace": self.input["namespace"], "name": self.input["name"]}
        self.report: dict[str, Any] = {
            "operationId": self.input["operationId"],
            "runbook": runbook,
            "cluster": cluster,
            "status": "running",
            "startedAt": self.now.isoformat(),
            "endedAt": None,
            "durationSeconds": None,
            "steps": [],
            "error": None,
        }

    @property
    def now(self) -> datetime:
        return self.context.current_utc_datetime

    @property
    def retry(self) -> df.RetryOptions:
        return df.RetryOptions(
            first_retry_interval_in_milliseconds=int(1000 * self.options.get("activityRetrySeconds", 2)),
            max_number_of_attempts=int(self.options.get("activityAttempts", 3)),
        )

    def record(self, name: str, outcome: str, started: datetime, detail: str = "", data: Any = None) -> None:
        step: dict[str, Any] = {
            "name": name, "outcome": outcome, "startedAt": started.isoformat(),
            "durationSeconds": round((self.now - started).total_seconds(), 3), "detail": detail,
        }
        if data:
            step["data"] = data
        self.report["steps"].append(step)
        self._publish(None)

    def _publish(self, current: str | None) -> None:
        self.context.set_custom_status({
            "runbook": self.report["runbook"],
            "step": current,
            "stepsDone": [f"{s['name']}: {s['outcome']}" for s in self.report["steps"]],
        })

    def note(self, name: str, outcome: str, detail: str) -> None:
        """A step the orchestrator decides by itself (no activity), recorded like the others."""
        self.record(name, outcome, self.now, detail)

    def step(self, name: str, activity: str, payload: Any, retry: bool = True) -> Step:
        """Run one activity as a runbook step; its Outcome lands in the report."""
        started = self.now
        self._publish(name)
        try:
            if retry:
                result = yield self.context.call_activity_with_retry(activity, self.retry, payload)
            else:
                result = yield self.context.call_activity(activity, payload)
        except Exception as err:
            message = first_line(err)
            self.record(name, "failed", started, message)
            raise StepFailed(name, message) from None
        self._record_result(name, started, result)
        return result

    def _record_result(self, name: str, started: datetime, result: Any) -> None:
        if isinstance(result, dict) and "outcome" in result:
            self.record(name, result["outcome"], started, result.get("detail", ""), result.get("data"))
        else:
            self.record(name, "done", started)

    def in_parallel(self, steps: list[tuple[str, str, Any]]) -> Step:
        """Independent steps fanned out at once; each lands in the report, the first failure fails the run."""
        started = self.now
        self._publish(" + ".join(name for name, _, _ in steps))
        tasks = [self.context.call_activity_with_retry(activity, self.retry, payload) for _, activity, payload in steps]
        try:
            results = yield self.context.task_all(tasks)
        except Exception as err:
            failed = None
            for (name, _, _), task in zip(steps, tasks, strict=True):
                if task.is_completed and not task.is_faulted:
                    self._record_result(name, started, task.result)
                elif task.is_faulted and failed is None:
                    failed = (name, first_line(task.result))
                    self.record(name, "failed", started, failed[1])
                else:
                    self.record(name, "not finished", started, "stopped when another step of its group failed")
            name, message = failed or (steps[0][0], first_line(err))
            raise StepFailed(name, message) from None
        for (name, _, _), result in zip(steps, results, strict=True):
            self._record_result(name, started, result)
        return results

    def wait_until(
        self, name: str, activity: str, payload: Any, ready: Callable[[Any], bool],
        describe: Callable[[Any], str], timeout_seconds: float,
    ) -> Step:
        """Poll `activity` on a durable timer until `ready`, or fail the step at the deadline."""
        started = self.now
        deadline = started + timedelta(seconds=timeout_seconds)
        poll = timedelta(seconds=self.options.get("pollSeconds", 2))
        self._publish(name)
        polls = 0
        while True:
            try:
                result = yield self.context.call_activity_with_retry(activity, self.retry, payload)
            except Exception as err:
                message = first_line(err)
                self.record(name, "failed", started, message)
                raise StepFailed(name, message) from None
            polls += 1
            if ready(result):
                self.record(name, "done", started, describe(result), {"polls": polls})
                return result
            if self.now >= deadline:
                message = f"not ready after {timeout_seconds:g}s: {describe(result)}"
                self.record(name, "failed", started, message)
                raise StepFailed(name, message)
            yield self.context.create_timer(min(self.now + poll, deadline))

    def finish(self, error: BaseException | None, result: dict[str, Any] | None = None) -> Step:
        """Close the report, store it, release the cluster's lock; runs in every run's `finally`."""
        self.report["status"] = "failed" if error else "succeeded"
        self.report["error"] = (str(error) if isinstance(error, StepFailed) else first_line(error)) if error else None
        if result:
            self.report["result"] = result
        self.report["endedAt"] = self.now.isoformat()
        started = datetime.fromisoformat(self.report["startedAt"])
        self.report["durationSeconds"] = round((self.now - started).total_seconds(), 3)
        self._publish("store report")
        stored: Exception | None = None
        try:
            self.report["location"] = yield self.context.call_activity_with_retry(
                "store_report", self.retry, self.report
            )
        except Exception as err:  # not `finally`: a replay's abandoned generator must not yield again
            stored = err
        if self.input.get("ownsLock", True):  # a sub-orchestration runs under its parent's lock
            yield self.context.call_activity_with_retry("release_lock", self.retry, {
                **self.report["cluster"], "operationId": self.input.get("lockId", self.report["operationId"]),
            })
        self._publish(None)
        if stored is not None:
            raise stored
        return self.report
