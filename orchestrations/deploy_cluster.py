"""Runbook: deploy a highly available PostgreSQL cluster (DESIGN §5), verified step by step."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from orchestrations.runbook import Runbook, Step, StepFailed
from orchestrations.steps import healthy, instances_ready, remove_cluster, wait_for_status
from shared.payloads import OnRun
from shared.runs import DeployInput
from shared.spec import ClusterSpec

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def deploy_cluster(context: df.DurableOrchestrationContext) -> Step:
    run = Runbook(context, "deploy_cluster", DeployInput)
    spec = run.input.spec
    made = {"cluster": False, "secret": False}
    error: Exception | None = None
    result: dict[str, Any] | None = None
    try:
        run.note("validate spec", "done", "ClusterSpec validated by the API before the run started")
        settled = yield from run.step("pre-flight", "preflight", spec, retry=False)
        spec = ClusterSpec.model_validate(settled.data["spec"])  # backup.method resolved once, here
        preflight = yield from run.step(
            "backup destination pre-flight", "preflight_backup_destination", spec, retry=False
        )
        yield from run.step("namespace", "ensure_namespace", spec)
        secret = yield from run.step("app-user secret", "ensure_app_secret",
                                     OnRun(spec=spec, operation_id=run.input.operation_id))
        # ours if this run made it, even when a redelivered activity answered "exists"
        made["secret"] = secret.data.get("createdBy") == run.input.operation_id
        yield from run.step("operator config", "configure_operator", spec)
        yield from run.step("monitoring", "configure_monitoring", spec)
        yield from run.step("backup identity", "ensure_backup_identity", spec)
        made["cluster"] = preflight.outcome == "done"
        yield from run.step("apply cluster", "apply_cluster", spec)
        # the rw/ro endpoints early: a LoadBalancer takes a while to get its address, and SQL may need it
        endpoints = yield from run.step("endpoints", "expose_endpoints", spec)
        timeout = run.options.ready_timeout_seconds
        yield from wait_for_status(run, "wait ready", instances_ready, timeout)
        # independent checks, fanned out; they overlap the HA manager naming the synchronous standbys
        yield from run.in_parallel([
            ("verify monitoring", "verify_monitoring", spec),
            ("zone spread", "check_zone_spread", spec),
            ("WAL archiving", "check_wal_archiving", spec),
            ("sample dataset", "load_sample_dataset", spec),
        ])
        yield from run.step("replica check", "check_replicas", spec)
        status = yield from wait_for_status(run, "synchronous standby", healthy, timeout)
        yield from run.step("scheduled backup", "ensure_scheduled_backup", spec)
        result = {
            "phase": status.phase,
            "currentPrimary": status.current_primary,
            "instances": [{"name": i.name, "role": i.role, "syncState": i.sync_state} for i in status.instances_status],
            "endpoints": endpoints.data,
        }
    except Exception as err:
        error = err
        yield from compensate(run, spec, made)
    report = yield from run.finish(error, result)
    if error is not None:
        raise StepFailed("deploy_cluster", report["error"])
    return report


def compensate(run: Runbook, spec: ClusterSpec, made: dict[str, bool]) -> Step:
    """Remove what this run made, so a failed deploy leaves nothing half-made behind."""
    run.stop_listening()
    try:
        if made["cluster"]:
            # a cluster born in this run archived nothing anyone needs; its WAL would block a redeploy
            yield from remove_cluster(run, spec, delete_backups=True, delete_secret=made["secret"])
        elif made["secret"]:
            yield from run.step("delete app-user secret", "delete_app_secret", spec)
    except StepFailed:
        pass  # recorded in the report; the run fails with its first error
