"""Runbook: prove a cluster's backups — archiving works, a backup completes, the object store holds it
with continuous WAL and a fresh recovery point, and (optionally) it restores into a new cluster."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from orchestrations.runbook import Interrupted, Runbook, Step, StepFailed, first_line
from orchestrations.steps import read_spec, restore_test, take_backup
from shared.backups import backup_name
from shared.payloads import InventoryRequest
from shared.runs import VerifyInput

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def verify_backups(context: df.DurableOrchestrationContext) -> Step:
    run = Runbook(context, "verify_backups", VerifyInput)
    request = run.input.verify
    error: Exception | None = None
    result: dict[str, Any] = {}
    try:
        spec = yield from read_spec(run, "read cluster spec")
        if spec is None:
            raise StepFailed("read cluster spec", "the cluster does not exist")
        archiving_error: StepFailed | None = None
        try:
            yield from run.step("WAL archiving", "check_archiving", spec)
        except StepFailed as err:
            if request.backup != "new":
                raise
            archiving_error = err  # still ask for the backup, as an operator would: it shows what CNPG does
        inventory_request = InventoryRequest(spec=spec)
        if request.backup == "new":
            name = backup_name(spec.name, run.input.operation_id)
            try:  # with archiving known broken, the first walArchivingFailing confirms it: no patience then
                backup = yield from take_backup(run, spec, name, 0 if archiving_error else None)
            except StepFailed as failed:
                result["backup"] = failed.answer
                raise archiving_error or failed from None
            result["backup"] = backup
            if archiving_error is not None:
                raise archiving_error
            inventory_request = InventoryRequest(spec=spec, backup_id=backup.backup_id)
        elif request.backup == "random":
            inventory_request = InventoryRequest(spec=spec, choose="random", window_hours=request.window_hours,
                                                 seed=run.input.operation_id)
        inventory = yield from run.step("object-store inventory", "inventory_backups", inventory_request)
        result["inventory"] = inventory.data
        if request.restore_test:
            result["restoreTest"] = yield from restore_test(run, request.checks)
    except StepFailed as err:
        error = err
    except Exception as err:  # a failed sub-orchestration: its own report says why
        run.note("restore test", "failed", first_line(err))
        canceled = yield from run.canceled(f"{run.input.operation_id}-restore")
        error = Interrupted("restore test", "cancel", None) if canceled else StepFailed("restore test", first_line(err))
    report = yield from run.finish(error, result)
    if error is not None:
        raise StepFailed("verify_backups", report["error"])
    return report
