"""Runbook: prove a cluster's backups — archiving works, a backup completes, the object store holds it
with continuous WAL and a fresh recovery point, and (optionally) it restores into a new cluster."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from orchestrations.runbook import Interrupted, Runbook, Step, StepFailed
from shared.backups import backup_name

bp = df.Blueprint()


def backup_done(backup: dict[str, Any]) -> bool:
    return backup["phase"] in ("completed", "failed", "walArchivingFailing")


def describe_backup(backup: dict[str, Any]) -> str:
    where = f" of {backup['instance']}" if backup.get("instance") else ""
    ids = f" {backup['backupId']} ({backup['beginWal']} .. {backup['endWal']})" if backup.get("backupId") else ""
    return f"Backup {backup['name']}{where}: {backup['phase']}{ids}"


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
            backup_ref = {**run.report["cluster"], "backupName": name}
            yield from run.step("take backup", "start_backup", {"spec": spec, "backupName": name})
            backup = yield from run.wait_until(
                "wait backup", "get_backup", backup_ref, backup_done, describe_backup,
                run.options.get("backupTimeoutSeconds", 1800),
            )
            result["backup"] = backup
            if backup["phase"] == "walArchivingFailing":
                # CNPG leaves such a Backup where it is, and counts it as pending: it would hold back the
                # cluster's next Backups and its ScheduledBackup (backup_controller.go) until removed
                yield from run.step("release stuck backup", "delete_backup", backup_ref)
            if archiving_error is not None:
                raise archiving_error
            if backup["phase"] != "completed":
                raise StepFailed("wait backup", f"backup {name} ended {backup['phase']}: {backup.get('error')}")
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
