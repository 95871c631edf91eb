"""Runbook: prove a cluster's backups — archiving works, a backup completes, the object store holds it
with continuous WAL and a fresh recovery point, and (optionally) it restores into a new cluster."""

from __future__ import annotations

import contextlib
from typing import Any

import azure.durable_functions as df

from orchestrations.runbook import Interrupted, Runbook, Step, StepFailed
from shared.backups import backup_name

bp = df.Blueprint()


def backup_done(backup: dict[str, Any]) -> bool:
    return backup["phase"] in ("completed", "failed")


def backup_trouble(backup: dict[str, Any]) -> str | None:
    """What holds a Backup back while it is not done: WAL archiving failing (CNPG retries it), the object
    store not answering. Neither is final by itself; held past the patience, it ends the wait."""
    if backup["phase"] == "walArchivingFailing":
        return f"walArchivingFailing: {backup.get('error') or 'the instance manager finds WAL archiving failing'}"
    if backup_done(backup) or not backup.get("error"):
        return None
    return f"{backup['phase']}: {backup['error']}"


def describe_backup(backup: dict[str, Any]) -> str:
    where = f" of {backup['instance']}" if backup.get("instance") else ""
    ids = f" {backup['backupId']} ({backup['beginWal']} .. {backup['endWal']})" if backup.get("backupId") else ""
    trouble = f" ({said})" if (said := backup_trouble(backup)) else ""
    return f"Backup {backup['name']}{where}: {backup['phase']}{ids}{trouble}"


def take_backup(run: Runbook, spec: dict[str, Any], name: str, patience_seconds: float | None = None) -> Step:
    """CNPG's on-demand Backup, awaited. One held back past the patience is released (its record deleted; a
    local backup process stopped): CNPG counts a Backup stuck in walArchivingFailing as running, and it would
    hold back the cluster's next Backups and its ScheduledBackup (backup_controller.go)."""
    ref = {**run.report["cluster"], "backupName": name}
    yield from run.step("take backup", "start_backup", {"spec": spec, "backupName": name})
    patience = run.options.get("backupPatienceSeconds", 120) if patience_seconds is None else patience_seconds
    try:
        backup = yield from run.wait_until(
            "wait backup", "get_backup", ref, backup_done, describe_backup,
            run.options.get("backupTimeoutSeconds", 1800), stalled=backup_trouble, patience_seconds=patience,
        )
    except StepFailed:
        # a release that fails is recorded in the report; the run ends with the wait's own error (or its cancel)
        with contextlib.suppress(StepFailed):
            yield from run.step("release stuck backup", "delete_backup", ref)
        raise
    if backup["phase"] != "completed":
        raise StepFailed("wait backup", f"backup {name} ended {backup['phase']}: {backup.get('error')}", backup)
    return backup


@bp.orchestration_trigger(context_name="context")
def verify_backups(context: df.DurableOrchestrationContext) -> Step:
    run = Runbook(context, "verify_backups")
    request: dict[str, Any] = run.input.get("verify", {})
    error: Exception | None = None
    result: dict[str, Any] = {}
    try:
        spec = yield from run.step("read cluster spec", "get_stored_spec", run.report["cluster"])
        if spec is None:
            raise StepFailed("read cluster spec", "the cluster does not exist")
        mode = request.get("backup", "new")
        archiving_error: StepFailed | None = None
        try:
            yield from run.step("WAL archiving", "check_archiving", spec)
        except StepFailed as err:
            if mode != "new":
                raise
            archiving_error = err  # still ask for the backup, as an operator would: it shows what CNPG does
        inventory_request: dict[str, Any] = {"spec": spec}
        if mode == "new":
            name = backup_name(spec["name"], run.input["operationId"])
            try:  # with archiving known broken, the first walArchivingFailing confirms it: no patience then
                backup = yield from take_backup(run, spec, name, 0 if archiving_error else None)
            except StepFailed as failed:
                result["backup"] = failed.answer
                raise archiving_error or failed from None
            result["backup"] = backup
            if archiving_error is not None:
                raise archiving_error
            inventory_request["backupId"] = backup["backupId"]
        elif mode == "random":
            inventory_request.update(choose="random", windowHours=request.get("windowHours", 168),
                                     seed=run.input["operationId"])
        inventory = yield from run.step("object-store inventory", "inventory_backups", inventory_request)
        result["inventory"] = inventory["data"]
        if request.get("restoreTest"):
            restore = {"checks": request.get("checks") or [], "instances": 1}
            started = run.now
            sub = yield context.call_sub_orchestrator("restore_cluster", {
                **run.report["cluster"], "operationId": f"{run.input['operationId']}-restore",
                "restore": restore, "options": run.options, "ownsLock": False,
                "requestedAt": run.now.isoformat(),
            }, f"{run.input['operationId']}-restore")
            run.record("restore test", "done", started,
                       f"restored into {sub['result']['restoreCluster']['name']} in "
                       f"{sub['result']['restoreSeconds']}s; {len(sub['result']['checks'])} check(s) passed; "
                       f"report {sub['operationId']}")
            result["restoreTest"] = {"operationId": sub["operationId"], **sub["result"]}
    except StepFailed as err:
        error = err
    except Exception as err:  # a failed sub-orchestration: its own report says why
        run.note("restore test", "failed", str(err).splitlines()[0][:500])
        canceled = yield from run.canceled(f"{run.input['operationId']}-restore")
        error = (Interrupted("restore test", "cancel", None) if canceled
                 else StepFailed("restore test", str(err).splitlines()[0][:500]))
    report = yield from run.finish(error, result)
    if error is not None:
        raise StepFailed("verify_backups", report["error"])
    return report
