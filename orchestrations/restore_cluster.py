"""Runbook: restore a cluster's backups into a new cluster, prove the data with read-only checks,
measure the restore, and remove the new cluster again (unless asked to keep it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import azure.durable_functions as df

from orchestrations.runbook import Runbook, Step, StepFailed
from orchestrations.steps import healthy, read_spec, remove_cluster, wait_for_status
from shared.payloads import OnRun, Preflight, RecoveryTarget, SqlChecks
from shared.requests import SqlCheck
from shared.restore import restore_name, restore_spec
from shared.runs import RestoreInput
from shared.spec import ClusterSpec

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def restore_cluster(context: df.DurableOrchestrationContext) -> Step:
    run = Runbook(context, "restore_cluster", RestoreInput)
    request = run.input.restore
    targets = request.dump()  # the recovery target as the request spelled it, for the platform
    kept_source = run.input.kept_source  # a cluster torn down with its backups kept: restored from those
    error: Exception | None = None
    result: dict[str, Any] = {}
    made = False
    target: ClusterSpec | None = None
    own_secret = kept_source is not None  # the source's secret went with it
    try:
        if kept_source is not None:
            source = kept_source
            run.note("read source spec", "done", f"{source.namespace}/{source.name} was torn down; restoring "
                                                 f"from the backups it kept (server name {source.server_name})")
        else:
            source = yield from read_spec(run, "read source spec")
        if source is None:
            raise StepFailed("read source spec", "the source cluster does not exist")
        window = yield from run.step("recovery pre-flight", "check_recovery_target", RecoveryTarget(
            spec=source, target_time=targets["targetTime"], target_lsn=targets["targetLsn"]), retry=False)
        result["recoverableWindow"] = {  # what the report's picture draws: the window and where the target fell
            "from": window.data.get("firstRecoverabilityPoint"), "to": window.data.get("newestRecoverableTime"),
            "target": targets["targetTime"] or targets["targetLsn"] or "the newest recoverable point"}
        target = restore_spec(source, request.name or restore_name(source.name, run.input.operation_id),
                              request.instances, targets["targetTime"], targets["targetLsn"], own_secret)
        result["restoreCluster"] = {"namespace": target.namespace, "name": target.name,
                                    "serverName": target.server_name}
        # its clean-up deletes the restore's own archive unless it is kept: that needs blob delete
        settled = yield from run.step("pre-flight", "preflight", Preflight(
            spec=target, purpose="restore", delete_backups=not request.keep), retry=False)
        target = ClusterSpec.model_validate(settled.data["spec"])
        yield from run.step("backup destination pre-flight", "preflight_backup_destination", target, retry=False)
        made = True
        if own_secret:
            yield from run.step("app-user secret", "ensure_app_secret",
                                OnRun(spec=target, operation_id=run.input.operation_id))
        yield from run.step("backup identity", "ensure_backup_identity", target)
        yield from run.step("apply recovery cluster", "apply_cluster", target)
        yield from run.step("endpoints", "expose_endpoints", target)
        yield from wait_for_status(run, "wait ready", healthy, run.options.restore_timeout_seconds,
                                   cluster=target.ref)
        if own_secret:
            yield from run.step("app-user password", "apply_owner_secret", target)
        checks = request.checks or [default_check(target)]
        outcome = yield from run.step("SQL checks", "run_checks", SqlChecks(
            namespace=target.namespace, name=target.name, checks=checks), retry=False)
        requested = datetime.fromisoformat(run.input.requested_at or run.report.started_at)
        result["restoreSeconds"] = round((run.now - requested).total_seconds(), 3)
        result["checks"] = outcome.data["checks"]
    except Exception as err:
        error = err
    if target is not None and made:
        run.stop_listening()
        if request.keep:
            run.note("clean up", "skipped", f"keep: true; {target.namespace}/{target.name} stays")
        else:
            try:  # also when the run failed: nothing it made is left behind
                yield from remove_cluster(run, target, delete_backups=True, delete_secret=own_secret)
            except StepFailed as cleanup_error:
                error = error or cleanup_error
    report = yield from run.finish(error, result)
    if error is not None:
        raise StepFailed("restore_cluster", report["error"])
    return report


def default_check(spec: ClusterSpec) -> SqlCheck:
    return SqlCheck(name="database answers", query="SELECT current_database()", expected=spec.bootstrap.database,
                    database=spec.bootstrap.database)
