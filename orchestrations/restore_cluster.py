"""Runbook: restore a cluster's backups into a new cluster, prove the data with read-only checks,
measure the restore, and remove the new cluster again (unless asked to keep it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import azure.durable_functions as df

from orchestrations.deploy_cluster import describe, healthy
from orchestrations.runbook import Runbook, Step, StepFailed
from orchestrations.teardown_cluster import remove_cluster
from shared.restore import restore_name, restore_spec
from shared.spec import ClusterSpec

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def restore_cluster(context: df.DurableOrchestrationContext) -> Step:
    run = Runbook(context, "restore_cluster")
    request: dict[str, Any] = run.input["restore"]
    error: Exception | None = None
    result: dict[str, Any] = {}
    made = False
    target: ClusterSpec | None = None
    try:
        if run.input.get("keptSource"):  # a cluster torn down with its backups kept: its recorded spec
            source = run.input["keptSource"]
            server = source["backup"].get("serverName") or source["name"]
            run.note("read source spec", "done", f"{source['namespace']}/{source['name']} was torn down; restoring "
                                                 f"from the backups it kept (server name {server})")
        else:
            source = yield from run.step("read source spec", "get_stored_spec", run.report["cluster"])
        if source is None:
            raise StepFailed("read source spec", "the source cluster does not exist")
        yield from run.step("recovery pre-flight", "check_recovery_target", {
            "spec": source, "targetTime": request.get("targetTime"), "targetLsn": request.get("targetLsn")},
            retry=False)
        own_secret = bool(run.input.get("keptSource"))  # the source's secret went with it
        target = restore_spec(
            ClusterSpec.model_validate(source), request.get("name") or restore_name(source["name"], run.input[
                "operationId"]), request.get("instances", 1), request.get("targetTime"), request.get("targetLsn"),
            own_secret,
        )
        spec = target.dump()
        result["restoreCluster"] = {"namespace": target.namespace, "name": target.name,
                                    "serverName": target.server_name}
        # its clean-up deletes the restore's own archive unless it is kept: that needs blob delete
        settled = yield from run.step("pre-flight", "preflight", {
            "spec": spec, "purpose": "restore", "deleteBackups": not request.get("keep")}, retry=False)
        target = ClusterSpec.model_validate(settled["data"]["spec"])
        spec = target.dump()
        yield from run.step("backup destination pre-flight", "preflight_backup_destination", spec, retry=False)
        made = True
        if own_secret:
            yield from run.step("app-user secret", "ensure_app_secret", {
                "spec": spec, "operationId": run.input["operationId"]})
        yield from run.step("backup identity", "ensure_backup_identity", spec)
        yield from run.step("apply recovery cluster", "apply_cluster", spec)
        yield from run.step("endpoints", "expose_endpoints", spec)
        yield from run.wait_until(
            "wait ready", "get_cluster_status", {"namespace": target.namespace, "name": target.name}, healthy,
            describe, run.options.get("restoreTimeoutSeconds", 1800),
        )
        if own_secret:
            yield from run.step("app-user password", "apply_owner_secret", spec)
        checks = request.get("checks") or [default_check(target)]
        outcome = yield from run.step("SQL checks", "run_checks", {
            "namespace": target.namespace, "name": target.name, "checks": checks}, retry=False)
        requested = datetime.fromisoformat(run.input["requestedAt"])
        result["restoreSeconds"] = round((run.now - requested).total_seconds(), 3)
        result["checks"] = outcome["data"]["checks"]
    except Exception as err:
        error = err
    if target is not None and made:
        run.stop_listening()
        if request.get("keep"):
            run.note("clean up", "skipped", f"keep: true; {target.namespace}/{target.name} stays")
        else:
            try:  # also when the run failed: nothing it made is left behind
                yield from remove_cluster(run, target.dump(), delete_backups=True,
                                          delete_secret=bool(run.input.get("keptSource")))
            except StepFailed as cleanup_error:
                error = error or cleanup_error
    report = yield from run.finish(error, result)
    if error is not None:
        raise StepFailed("restore_cluster", report["error"])
    return report


def default_check(spec: ClusterSpec) -> dict[str, Any]:
    return {"name": "database answers", "query": "SELECT current_database()", "expected": spec.bootstrap.database,
            "database": spec.bootstrap.database}
