"""The devhost's durable backend: durabletask's in-memory engine, its state kept in SQLite under PGHA_HOME.

The local stand-in for the Functions task hub (Azure keeps every orchestration's history in storage, and a
host restart resumes runs where they were); not a durable engine of pgha's own. Upstream's engine runs as
it is; this subclass writes every instance the engine changed before the gRPC call that changed it returns
(so before a worker or a client is acknowledged, and before a 202 goes out), and on start reads them back:
a running instance's unfinished activities are dispatched again (at least once: each activity is
idempotent), its timers re-armed (those due fire at once), its undelivered events delivered, its
sub-orchestrations watched again. Runs named in `interrupt_on_restart` are not replayed blind: the
activities they left open stay open, and `restart_event` is raised to them; the orchestration races it
against every step and wait (orchestrations/runbook.py) and compensates.

Read from durabletask 1.12.0's testing/in_memory_backend.py: the instance fields (OrchestrationInstance),
the RPCs that change state (MUTATING), timers as one sleeping thread each (_process_create_timer_action),
activities handed out once with no lease (GetWorkItems), the re-attached watcher of the rewind path.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import durabletask.internal.helpers as helpers
import durabletask.internal.orchestrator_service_pb2 as pb
from durabletask.testing.in_memory_backend import (
    ActivityWorkItem,
    InMemoryOrchestrationBackend,
    OrchestrationInstance,
)

RESTARTED_ERROR = "interrupted by a host restart"
SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
  instance_id TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT, status INTEGER NOT NULL,
  input TEXT, output TEXT, custom_status TEXT, created_at TEXT NOT NULL, last_updated_at TEXT NOT NULL,
  completed_at TEXT, failure_details BLOB, tags TEXT,
  undelivered BLOB NOT NULL  -- HistoryChunk of the events the orchestration has not yet seen
);
CREATE TABLE IF NOT EXISTS history (
  instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event BLOB NOT NULL,  -- HistoryEvent bytes
  PRIMARY KEY (instance_id, seq)
);
"""
MUTATING = ("StartInstance", "RaiseEvent", "TerminateInstance", "SuspendInstance", "ResumeInstance",
            "PurgeInstances", "RestartInstance", "RewindInstance", "CompleteOrchestratorTask",
            "CompleteActivityTask", "AbandonTaskOrchestratorWorkItem")
TERMINAL = (pb.ORCHESTRATION_STATUS_COMPLETED, pb.ORCHESTRATION_STATUS_FAILED, pb.ORCHESTRATION_STATUS_TERMINATED)


class Backend(InMemoryOrchestrationBackend):
    """The in-memory backend with one fix. Its sub-orchestration watcher asks to wait with no timeout, which
    the backend turns into 30 s (_wait_for_state); the watcher then drops the completion and the parent
    waits for ever. A restore test as a sub-run of a verification takes longer than that. Here "no
    timeout" waits as long as the instance exists."""

    slice_seconds = 30.0

    def _wait_for_state(self, instance_id: str, predicate: Any, timeout: float | None) -> Any:
        if timeout is not None:
            return super()._wait_for_state(instance_id, predicate, timeout)
        while not self._shutdown_event.is_set():
            found = super()._wait_for_state(instance_id, predicate, self.slice_seconds)
            if found is not None:
                return found
            with self._lock:
                if instance_id not in self._instances:
                    return None
        return None


class DiskBackend(Backend):
    def __init__(self, path: Path, interrupt_on_restart: frozenset[str] = frozenset(), restart_event: str = "",
                 **options: Any) -> None:
        super().__init__(**options)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._hold = _hold(path.with_suffix(".lock"))
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a commit survives the process being killed
        self._db.executescript(SCHEMA)
        self._dirty: set[str] = set()
        self._saved: dict[str, tuple[list[Any], int]] = {}  # instance -> (its history list, rows on disk)
        self._closed = False
        self._interrupt, self._restart_event = interrupt_on_restart, restart_event
        self.resumed: list[str] = []
        self._restore()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()
            self._hold.close()  # the task hub is free for the next devhost

    # ---- writing: whatever enqueues an instance marks it; a changing RPC writes them all before it returns
    def _enqueue_orchestration(self, instance_id: str) -> None:
        self._dirty.add(instance_id)
        super()._enqueue_orchestration(instance_id)

    def _flush(self) -> None:
        """One transaction for every instance changed since the last (the caller holds the lock)."""
        if self._closed or not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        saved: dict[str, tuple[list[Any], int] | None] = {}
        cursor = self._db.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            for instance_id in dirty:
                saved[instance_id] = self._write(cursor, instance_id)
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            self._dirty |= dirty
            raise
        for instance_id, rows in saved.items():
            if rows is None:
                self._saved.pop(instance_id, None)
            else:
                self._saved[instance_id] = rows

    def _write(self, cursor: sqlite3.Cursor, instance_id: str) -> tuple[list[Any], int] | None:
        instance = self._instances.get(instance_id)
        if instance is None:  # purged, or replaced by a restart of the same id
            cursor.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,))
            cursor.execute("DELETE FROM history WHERE instance_id = ?", (instance_id,))
            return None
        history = instance.history
        written, start = self._saved.get(instance_id, (history, 0))
        if written is not history or len(history) < start:  # continue-as-new cleared it, a rewind replaced it
            cursor.execute("DELETE FROM history WHERE instance_id = ?", (instance_id,))
            start = 0
        cursor.executemany("INSERT INTO history VALUES (?, ?, ?)",
                           [(instance_id, n, history[n].SerializeToString()) for n in range(start, len(history))])
        undelivered = pb.HistoryChunk(events=[*instance.dispatched_events, *instance.pending_events])
        cursor.execute("INSERT OR REPLACE INTO instances VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (
            instance_id, instance.name, instance.version, int(instance.status), instance.input, instance.output,
            instance.custom_status, _iso(instance.created_at), _iso(instance.last_updated_at),
            _iso(instance.completed_at),
            instance.failure_details.SerializeToString() if instance.failure_details else None,
            json.dumps(instance.tags) if instance.tags else None, undelivered.SerializeToString(),
        ))
        return history, len(history)

    # ---- timers: upstream's, but re-armable after a restart and written when they fire
    def _process_create_timer_action(self, instance: OrchestrationInstance, action: pb.OrchestratorAction) -> None:
        fire_at = action.createTimer.fireAt.ToDatetime(tzinfo=UTC)
        instance.history.append(helpers.new_timer_created_event(action.id, fire_at))
        if instance.status == pb.ORCHESTRATION_STATUS_PENDING:
            instance.status = pb.ORCHESTRATION_STATUS_RUNNING
        self._arm_timer(instance.instance_id, action.id, fire_at)

    def _arm_timer(self, instance_id: str, timer_id: int, fire_at: datetime) -> None:
        def fire() -> None:
            if self._shutdown_event.wait(max(0.0, (fire_at - datetime.now(UTC)).total_seconds())):
                return  # the backend stopped: the next one re-arms this timer from the store
            with self._lock:
                instance = self._instances.get(instance_id)
                if self._closed or instance is None or instance.status in TERMINAL:
                    return
                instance.pending_events.append(helpers.new_timer_fired_event(timer_id, fire_at))
                instance.last_updated_at = datetime.now(UTC)
                self._enqueue_orchestration(instance_id)
                self._flush()

        threading.Thread(target=fire, daemon=True, name=f"timer-{instance_id}-{timer_id}").start()

    # ---- reading back, before the worker connects
    def _restore(self) -> None:
        with self._lock:
            histories: dict[str, list[pb.HistoryEvent]] = {}
            rows = self._db.execute("SELECT instance_id, event FROM history ORDER BY instance_id, seq")
            for instance_id, raw in rows:
                histories.setdefault(instance_id, []).append(pb.HistoryEvent.FromString(raw))
            for row in self._db.execute("SELECT * FROM instances").fetchall():
                instance = self._instance(row, histories.get(row[0], []))
                self._instances[instance.instance_id] = instance
                self._saved[instance.instance_id] = (instance.history, len(instance.history))
            for instance in list(self._instances.values()):
                if instance.status not in TERMINAL:
                    self._resume(instance)
                    self.resumed.append(instance.instance_id)
            self._flush()

    def _instance(self, row: tuple[Any, ...], history: list[pb.HistoryEvent]) -> OrchestrationInstance:
        (instance_id, name, version, status, given, output, custom, created, updated, completed, failure, tags,
         undelivered) = row
        token = self._next_completion_token
        self._next_completion_token += 1
        return OrchestrationInstance(
            instance_id=instance_id, name=name, status=status, version=version, input=given, output=output,
            custom_status=custom, created_at=_time(created), last_updated_at=_time(updated),
            completed_at=_time(completed),
            failure_details=pb.TaskFailureDetails.FromString(failure) if failure else None,
            history=history, pending_events=list(pb.HistoryChunk.FromString(undelivered).events),
            completion_token=token, tags=json.loads(tags) if tags else None,
        )

    def _resume(self, instance: OrchestrationInstance) -> None:
        seen = [*instance.history, *instance.pending_events]
        answered = ({e.taskCompleted.taskScheduledId for e in seen if e.HasField("taskCompleted")}
                    | {e.taskFailed.taskScheduledId for e in seen if e.HasField("taskFailed")})
        children_done = ({e.subOrchestrationInstanceCompleted.taskScheduledId for e in seen
                          if e.HasField("subOrchestrationInstanceCompleted")}
                         | {e.subOrchestrationInstanceFailed.taskScheduledId for e in seen
                            if e.HasField("subOrchestrationInstanceFailed")})
        fired = {e.timerFired.timerId for e in seen if e.HasField("timerFired")}
        # A run to interrupt gets the restart event once; the steps it left open before that event stay open
        # (what they did is unknown), the ones its compensation opened after it run again. One that never
        # started just starts.
        def restart(event: pb.HistoryEvent) -> bool:
            return event.HasField("eventRaised") and event.eventRaised.name.casefold() == self._restart_event.casefold()

        applies = (instance.name in self._interrupt and bool(self._restart_event)
                   and any(e.HasField("executionStarted") for e in instance.history))
        heard_at = next((n for n, e in enumerate(instance.history) if restart(e)), None)
        pending = any(restart(e) for e in instance.pending_events)
        interrupt = applies and heard_at is None and not pending
        left_open_before = (len(instance.history) if interrupt or (applies and pending)
                            else heard_at if applies and heard_at is not None else 0)
        for n, event in enumerate(instance.history):
            kind = event.WhichOneof("eventType")
            if kind == "taskScheduled" and event.eventId not in answered:
                if n < left_open_before:
                    continue
                scheduled = event.taskScheduled
                self._activity_queue.append(ActivityWorkItem(
                    instance_id=instance.instance_id, name=scheduled.name, task_id=event.eventId,
                    input=_optional(scheduled, "input"), completion_token=instance.completion_token,
                    version=_optional(scheduled, "version")))
            elif kind == "timerCreated" and event.eventId not in fired:
                self._arm_timer(instance.instance_id, event.eventId, event.timerCreated.fireAt.ToDatetime(tzinfo=UTC))
            elif kind == "subOrchestrationInstanceCreated" and event.eventId not in children_done:
                child = event.subOrchestrationInstanceCreated
                if child.instanceId not in self._instances:  # as upstream's rewind path recreates one
                    self._create_instance_internal(child.instanceId, child.name, _optional(child, "input"),
                                                   version=_optional(child, "version"))
                self._watch_sub_orchestration(instance.instance_id, child.instanceId, event.eventId)
        if interrupt:
            instance.pending_events.append(helpers.new_event_raised_event(self._restart_event,
                                                                          json.dumps(RESTARTED_ERROR)))
        wakes = any(e.HasField("executionResumed") or e.HasField("executionTerminated")
                    for e in instance.pending_events)
        if instance.pending_events and (instance.status != pb.ORCHESTRATION_STATUS_SUSPENDED or wakes):
            self._enqueue_orchestration(instance.instance_id)
        self._work_available.set()


def _persisting(name: str) -> Any:
    def method(self: DiskBackend, request: Any, context: Any) -> Any:
        with self._lock:  # an RLock: upstream's handler takes it again
            before = set(self._instances)
            try:
                return getattr(super(DiskBackend, self), name)(request, context)
            finally:
                self._dirty |= before - set(self._instances)
                if getattr(request, "instanceId", ""):
                    self._dirty.add(request.instanceId)
                self._flush()  # on disk before the response (the acknowledgement) leaves

    method.__name__ = name
    return method


for _name in MUTATING:
    setattr(DiskBackend, _name, _persisting(_name))


def _hold(path: Path) -> Any:
    """One devhost at a time per task hub: two engines resuming the same runs would run them twice. The
    kernel drops the lock with the process, so a killed devhost never leaves it held."""
    handle = open(path, "a")  # noqa: SIM115 - held open for the backend's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RuntimeError(f"another devhost holds the task hub {path.stem} ({path.parent}); stop it, or set "
                           "PGHA_TASK_HUB to another name") from None
    return handle


def _optional(message: Any, field: str) -> str | None:
    return getattr(message, field).value if message.HasField(field) else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
