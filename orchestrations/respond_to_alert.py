"""Runbook: answer an alert (Azure Monitor's or Alertmanager's) as a careful on-call engineer would —
confirm, diagnose, give the HA manager its chance, act only within policy (and with approval when asked),
verify, report.

pgha never promotes a standby itself: the HA manager (CNPG's operator, Patroni locally) decides
failovers, and two managers deciding is how split brains happen. pgha's one remedy is to make the
HA manager able to act again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import azure.durable_functions as df

from orchestrations.runbook import Interrupted, Runbook, Step, StepFailed, first_line
from orchestrations.steps import cluster_status, describe, healthy, read_spec, take_backup, wait_for_status
from shared.backups import backup_name
from shared.outcome import Outcome
from shared.runs import AlertInput, VerifyInput
from shared.spec import ClusterSpec
from shared.status import ClusterStatus

bp = df.Blueprint()


Alerted = Runbook[AlertInput]


def writable(answer: Outcome) -> bool:
    return bool(answer.data["writable"])


def said(answer: Outcome) -> str:
    return answer.detail


def archiving_works(status: ClusterStatus) -> bool:
    archiving = status.condition("ContinuousArchiving")
    return archiving is not None and archiving.status == "True"


def permitted(run: Alerted, action: str) -> Step:
    """The playbook's policy: `auto` acts, `approval` waits for a person (no approval, no action)."""
    if run.input.policy == "auto":
        run.note("policy", "auto", f"{action}: allowed by policy auto")
        return True
    return (yield from run.approval(action, run.options.approval_timeout_seconds))


def check_primary(run: Alerted, step: str, timeout_seconds: float) -> Step:
    """Whether the primary takes a write, polled until it does or the time is up (not a failure: the
    playbook decides what comes next)."""
    return (yield from run.wait_until(step, "check_primary", run.names, writable, said, timeout_seconds,
                                      required=False, answer=Outcome))


def primary_timeline(status: ClusterStatus) -> int | None:
    return next((i.timeline for i in status.instances_status if i.name == status.current_primary), None)


def settled_by_the_ha_manager(run: Alerted, result: dict[str, Any]) -> Step:
    """The HA manager was faster than the alert (Patroni replaces a primary in seconds): pgha has nothing to
    do but wait for the cluster to be whole again (the old primary back as a standby, the synchronous
    standby in place) and report what the HA manager did."""
    try:
        status = yield from wait_for_status(run, "wait for the cluster to settle", healthy,
                                            run.options.alert_recovery_timeout_seconds)
    except StepFailed:
        result["outcome"] = "escalated"
        raise
    timeline = primary_timeline(status)
    run.note("verify", "done", f"the HA manager recovered before pgha looked: primary {status.current_primary} "
                               f"takes writes on timeline {timeline}; {describe(status)}")
    result.update(outcome="noActionNeeded", primary=status.current_primary, timeline=timeline)


def primary_unavailable(run: Alerted, spec: ClusterSpec, result: dict[str, Any]) -> Step:
    now = yield from run.step("confirm", "check_primary", run.names)
    if writable(now):
        yield from settled_by_the_ha_manager(run, result)
        return
    recovered = yield from check_primary(run, "grace period for the HA manager", run.options.alert_grace_seconds)
    if not writable(recovered):
        manager = yield from run.step("check the HA manager", "check_ha_manager", spec)
        remedy = manager.data.get("remedy")
        if manager.data["healthy"]:
            run.note("remedy", "skipped", "the HA manager runs: waiting for it to promote, never promoting behind it")
        elif not manager.data.get("actionable"):
            result["outcome"] = "escalated"
            raise StepFailed("escalate", f"{manager.detail}: not pgha's to fix; an operator must look")
        elif (yield from permitted(run, remedy)):
            yield from run.step("restore the HA manager", "restore_ha_manager", spec)
            result["action"] = remedy
        else:
            result["outcome"] = "notApproved"
            raise StepFailed("approval", f"{remedy!r} not approved: the cluster has no primary")
        recovered = yield from check_primary(run, "wait for a writable primary",
                                             run.options.alert_recovery_timeout_seconds)
    if not writable(recovered):
        result["outcome"] = "escalated"
        raise StepFailed("escalate", f"no writable primary after the HA manager's chance: {said(recovered)}; "
                                     "an operator must look (pgha does not promote behind the HA manager)")
    status = yield from cluster_status(run, "cluster status")
    run.note("verify", "done", describe(status))
    result.update(outcome="recovered", primary=recovered.data["primary"])


def replication_lag(run: Alerted, spec: ClusterSpec, result: dict[str, Any]) -> Step:
    diagnosis = yield from run.step("diagnose replication", "diagnose_replication", run.names)
    result.update(outcome="diagnosed", diagnosis=diagnosis.data)


def wal_archiving_failing(run: Alerted, spec: ClusterSpec, result: dict[str, Any]) -> Step:
    diagnosis = yield from run.step("diagnose archiving", "diagnose_archiving", spec)
    result["diagnosis"] = diagnosis.data
    try:
        yield from wait_for_status(
            run, "wait for archiving to work again", archiving_works, run.options.alert_recovery_timeout_seconds,
            watch_failure=False,  # archiving needs the primary alone: a standby that is gone does not end it
        )
    except Interrupted as stop:
        if stop.event != "resolved":
            raise
        run.note("archiving", "done", f"{run.input.alert.monitoring_service} resolved the alert: archiving works again")
    run.stop_listening("resolved")  # the backup that follows is the remedy: the alert resolving does not cut it
    if not (yield from permitted(run, "take a backup")):
        result["outcome"] = "notApproved"
        return
    result["action"] = "take a backup"
    try:
        result["backup"] = yield from take_backup(run, spec, backup_name(spec.name, run.input.operation_id))
    except StepFailed as failed:
        result["backup"] = failed.answer
        raise
    result["outcome"] = "recovered"


def backup_stale(run: Alerted, spec: ClusterSpec, result: dict[str, Any]) -> Step:
    if not (yield from permitted(run, "verify backups (take a new one)")):
        result["outcome"] = "notApproved"
        return
    started = run.now
    verification = f"{run.input.operation_id}-verify"
    sub = VerifyInput(**run.names, operation_id=verification, options=run.options, owns_lock=False,
                      lock_id=run.input.operation_id, requested_at=run.now.isoformat())
    try:
        yield run.sub_run("verify backups", "verify_backups", sub, verification)
    except Exception as err:  # its own report says why
        run.record("verify backups", "failed", started, first_line(err))
        if (yield from run.canceled(verification)):  # cancelled with its parent
            raise Interrupted("verify backups", "cancel", None) from None
        raise StepFailed("verify backups", f"see report {verification}") from None
    run.record("verify backups", "done", started, f"a new backup verified; report {verification}")
    result.update(outcome="recovered", action="verify backups", verification=verification)


PLAYBOOKS: dict[str, Callable[[Alerted, ClusterSpec, dict[str, Any]], Step]] = {
    "primaryUnavailable": primary_unavailable,
    "replicationLag": replication_lag,
    "walArchivingFailing": wal_archiving_failing,
    "backupStale": backup_stale,
}


@bp.orchestration_trigger(context_name="context")
def respond_to_alert(context: df.DurableOrchestrationContext) -> Step:
    run = Runbook(context, "respond_to_alert", AlertInput, interruptions=("cancel", "resolved"))
    alert = run.input.alert
    playbook = run.input.playbook
    result: dict[str, Any] = {"alert": alert, "playbook": playbook, "policy": run.input.policy,
                              "action": None, "outcome": None}
    error: Exception | None = None
    seen = f": {alert.description}" if alert.description else ""
    run.note("alert", "done", f"{alert.rule} (severity {alert.severity}, {alert.monitoring_service}) "
                              f"fired at {alert.fired_at}{seen}; playbook {playbook}")
    try:
        where = run.report.cluster
        spec = (yield from read_spec(run, "find cluster")) if where.name else None
        busy = run.input.busy_with
        if spec is None:
            run.note("cluster", "skipped", f"no cluster {where.namespace}/{where.name}: no action"
                     if where.name else "the alert names no cluster (labels cluster/namespace or a "
                                        "configuration item): no action")
            result["outcome"] = "unknownCluster"
        elif playbook not in PLAYBOOKS:
            run.note("playbook", "skipped", f"no playbook for alert rule {alert.rule!r}: reported only")
            result["outcome"] = "reported"
        elif busy and playbook != "replicationLag":
            status = yield from cluster_status(run, "cluster status")
            run.note("remedy", "skipped", f"{busy.runbook} {busy.operation_id} is running on this cluster: "
                     f"pgha does not act beside another run (a drill deletes primaries on purpose); "
                     f"{describe(status)}")
            result["outcome"] = "deferred"
        else:
            yield from PLAYBOOKS[playbook](run, spec, result)
    except Interrupted as stop:
        if stop.event != "resolved":
            error = stop
        else:
            at = stop.data.get("resolvedAt") if isinstance(stop.data, dict) else None
            run.note("resolved", "done", f"{alert.monitoring_service} resolved the alert{f' at {at}' if at else ''}: "
                                         "response ended")
            # after pgha's remedy, the monitoring's own word that the condition cleared is the recovery
            result["outcome"] = result["outcome"] or ("recovered" if result["action"] else "resolved")
            result["resolved"] = True
    except StepFailed as err:
        error = err
        result["outcome"] = result["outcome"] or "failed"
    report = yield from run.finish(error, result)
    if error is not None:
        raise StepFailed("respond_to_alert", report["error"])
    return report
