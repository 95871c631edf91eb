"""Runbook: answer an Azure Monitor alert as a careful on-call engineer would — confirm, diagnose, give
the HA manager its chance, act only within policy (and with approval when asked), verify, report.

pgha never promotes a standby itself: the HA manager (CNPG's operator, Patroni locally) decides
failovers, and two managers deciding is how split brains happen. pgha's one remedy is to make the
HA manager able to act again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import azure.durable_functions as df

from orchestrations.deploy_cluster import describe
from orchestrations.runbook import Interrupted, Runbook, Step, StepFailed
from orchestrations.verify_backups import take_backup
from shared.backups import backup_name

bp = df.Blueprint()


def writable(answer: dict[str, Any]) -> bool:
    return bool(answer["data"]["writable"])


def said(answer: dict[str, Any]) -> str:
    return str(answer["detail"])


def archiving_works(status: dict[str, Any]) -> bool:
    return any(c["type"] == "ContinuousArchiving" and c["status"] == "True" for c in status.get("conditions", []))


def permitted(run: Runbook, action: str) -> Step:
    """The playbook's policy: `auto` acts, `approval` waits for a person (no approval, no action)."""
    if run.input.get("policy", "auto") == "auto":
        run.note("policy", "auto", f"{action}: allowed by policy auto")
        return True
    return (yield from run.approval(action, run.options.get("approvalTimeoutSeconds", 900)))


def primary_unavailable(run: Runbook, spec: dict[str, Any], result: dict[str, Any]) -> Step:
    names = run.report["cluster"]
    now = yield from run.step("confirm", "check_primary", names)
    if writable(now):
        result["outcome"] = "noActionNeeded"
        return
    recovered = yield from run.wait_until(
        "grace period for the HA manager", "check_primary", names, writable, said,
        run.options.get("alertGraceSeconds", 30), required=False,
    )
    if not writable(recovered):
        manager = yield from run.step("check the HA manager", "check_ha_manager", spec)
        if manager["data"]["healthy"]:
            run.note("remedy", "skipped", "the HA manager runs: waiting for it to promote, never promoting behind it")
        elif not manager["data"].get("actionable"):
            result["outcome"] = "escalated"
            raise StepFailed("escalate", f"{manager['detail']}: not pgha's to fix; an operator must look")
        elif (yield from permitted(run, manager["data"]["remedy"])):
            yield from run.step("restore the HA manager", "restore_ha_manager", spec)
            result["action"] = manager["data"]["remedy"]
        else:
            result["outcome"] = "notApproved"
            raise StepFailed("approval", f"{manager['data']['remedy']!r} not approved: the cluster has no primary")
        recovered = yield from run.wait_until(
            "wait for a writable primary", "check_primary", names, writable, said,
            run.options.get("alertRecoveryTimeoutSeconds", 300), required=False,
        )
    if not writable(recovered):
        result["outcome"] = "escalated"
        raise StepFailed("escalate", f"no writable primary after the HA manager's chance: {said(recovered)}; "
                                     "an operator must look (pgha does not promote behind the HA manager)")
    status = yield from run.step("cluster status", "get_cluster_status", names)
    run.note("verify", "done", describe(status))
    result.update(outcome="recovered", primary=recovered["data"]["primary"])


def replication_lag(run: Runbook, spec: dict[str, Any], result: dict[str, Any]) -> Step:
    diagnosis = yield from run.step("diagnose replication", "diagnose_replication", run.report["cluster"])
    result.update(outcome="diagnosed", diagnosis=diagnosis["data"])


def wal_archiving_failing(run: Runbook, spec: dict[str, Any], result: dict[str, Any]) -> Step:
    diagnosis = yield from run.step("diagnose archiving", "diagnose_archiving", spec)
    result["diagnosis"] = diagnosis["data"]
    yield from run.wait_until(
        "wait for archiving to work again", "get_cluster_status", run.report["cluster"], archiving_works,
        describe, run.options.get("alertRecoveryTimeoutSeconds", 300),
        watch_failure=False,  # archiving needs the primary alone: a standby that is gone does not end it
    )
    if not (yield from permitted(run, "take a backup")):
        result["outcome"] = "notApproved"
        return
    result["action"] = "take a backup"
    try:
        result["backup"] = yield from take_backup(run, spec, backup_name(spec["name"], run.input["operationId"]))
    except StepFailed as failed:
        result["backup"] = failed.answer
        raise
    result["outcome"] = "recovered"


def backup_stale(run: Runbook, spec: dict[str, Any], result: dict[str, Any]) -> Step:
    if not (yield from permitted(run, "verify backups (take a new one)")):
        result["outcome"] = "notApproved"
        return
    started = run.now
    verification = f"{run.input['operationId']}-verify"
    try:
        yield run.context.call_sub_orchestrator("verify_backups", {
            **run.report["cluster"], "operationId": verification, "verify": {"backup": "new"},
            "options": run.options, "ownsLock": False, "lockId": run.input["operationId"],
            "requestedAt": run.now.isoformat(),
        }, verification)
    except Exception as err:  # its own report says why
        run.record("verify backups", "failed", started, str(err).splitlines()[0][:500])
        if (yield from run.canceled(verification)):  # cancelled with its parent
            raise Interrupted("verify backups", "cancel", None) from None
        raise StepFailed("verify backups", f"see report {verification}") from None
    run.record("verify backups", "done", started, f"a new backup verified; report {verification}")
    result.update(outcome="recovered", action="verify backups", verification=verification)


PLAYBOOKS: dict[str, Callable[[Runbook, dict[str, Any], dict[str, Any]], Step]] = {
    "primaryUnavailable": primary_unavailable,
    "replicationLag": replication_lag,
    "walArchivingFailing": wal_archiving_failing,
    "backupStale": backup_stale,
}


@bp.orchestration_trigger(context_name="context")
def respond_to_alert(context: df.DurableOrchestrationContext) -> Step:
    run = Runbook(context, "respond_to_alert", interruptions=("cancel", "resolved"))
    alert: dict[str, Any] = run.input["alert"]
    playbook: str = run.input["playbook"]
    result: dict[str, Any] = {"alert": alert, "playbook": playbook, "policy": run.input.get("policy", "auto"),
                              "action": None, "outcome": None}
    error: Exception | None = None
    run.note("alert", "done", f"{alert['rule']} (severity {alert['severity']}, {alert['monitoringService']}) "
                              f"fired at {alert['firedAt']}: playbook {playbook}")
    try:
        spec = None
        if run.report["cluster"]["name"]:
            spec = yield from run.step("find cluster", "get_stored_spec", run.report["cluster"])
        busy = run.input.get("busyWith")
        if spec is None:
            where = run.report["cluster"]
            run.note("cluster", "skipped", f"no cluster {where['namespace']}/{where['name']}: no action"
                     if where["name"] else "the alert names no cluster (labels cluster/namespace or a "
                                            "configuration item): no action")
            result["outcome"] = "unknownCluster"
        elif playbook not in PLAYBOOKS:
            run.note("playbook", "skipped", f"no playbook for alert rule {alert['rule']!r}: reported only")
            result["outcome"] = "reported"
        elif busy and playbook != "replicationLag":
            status = yield from run.step("cluster status", "get_cluster_status", run.report["cluster"])
            run.note("remedy", "skipped", f"{busy['runbook']} {busy['operationId']} is running on this cluster: "
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
            run.note("resolved", "done", f"Azure Monitor resolved the alert{f' at {at}' if at else ''}: response ended")
            result["outcome"] = result["outcome"] or "resolved"
            result["resolved"] = True
    except StepFailed as err:
        error = err
        result["outcome"] = result["outcome"] or "failed"
    report = yield from run.finish(error, result)
    if error is not None:
        raise StepFailed("respond_to_alert", report["error"])
    return report
