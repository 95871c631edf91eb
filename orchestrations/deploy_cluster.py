"""Runbook: deploy a highly available PostgreSQL cluster (DESIGN §5), verified step by step."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from orchestrations.runbook import Runbook, Step, StepFailed
from orchestrations.teardown_cluster import remove_cluster

bp = df.Blueprint()


def instances_ready(status: dict[str, Any]) -> bool:
    """A primary, and every instance up (standbys streaming)."""
    return bool(status.get("currentPrimary")) and status["readyInstances"] == status["instances"]


def healthy(status: dict[str, Any]) -> bool:
    """CNPG's healthy phase: every instance ready and the synchronous standbys the spec asks for in place."""
    return bool(status.get("healthy"))


def describe(status: dict[str, Any]) -> str:
    return (
        f"phase {status['phase']!r}, {status['readyInstances']}/{status['instances']} instances ready, "
        f"primary {status.get('currentPrimary') or 'none'}, "
        f"synchronous_standby_names {status.get('synchronousStandbyNames') or 'unset'!r}"
    )


@bp.orchestration_trigger(context_name="context")
def deploy_cluster(context: df.DurableOrchestrationContext) -> Step:
    run = Runbook(context, "deploy_cluster")
    spec: dict[str, Any] = run.input["spec"]
    names = run.report["cluster"]
    made = {"cluster": False, "secret": False}
    error: Exception | None = None
    result: dict[str, Any] | None = None
    try:
        run.note("validate spec", "done", "ClusterSpec validated by the API before the run started")
        settled = yield from run.step("pre-flight", "preflight", spec, retry=False)
        spec = settled["data"]["spec"]  # backup.method resolved once, here; the rest of the run uses it
        preflight = yield from run.step(
            "backup destination pre-flight", "preflight_backup_destination", spec, retry=False
        )
        yield from run.step("namespace", "ensure_namespace", spec)
        secret = yield from run.step("app-user secret", "ensure_app_secret", {
            "spec": spec, "operationId": run.input["operationId"]})
        # ours if this run made it, even when a redelivered activity answered "exists"
        made["secret"] = secret.get("data", {}).get("createdBy") == run.input["operationId"]
        yield from run.step("operator config", "configure_operator", spec)
        yield from run.step("monitoring", "configure_monitoring", spec)
        yield from run.step("backup identity", "ensure_backup_identity", spec)
        made["cluster"] = preflight["outcome"] == "done"
        yield from run.step("apply cluster", "apply_cluster", spec)
        # the rw/ro endpoints early: a LoadBalancer takes a while to get its address, and SQL may need it
        endpoints = yield from run.step("endpoints", "expose_endpoints", spec)
        timeout = run.options.get("readyTimeoutSeconds", 600)
        yield from run.wait_until("wait ready", "get_cluster_status", names, instances_ready, describe, timeout)
        # independent checks, fanned out; they overlap the HA manager naming the synchronous standbys
        yield from run.in_parallel([
            ("verify monitoring", "verify_monitoring", spec),
            ("zone spread", "check_zone_spread", spec),
            ("WAL archiving", "check_wal_archiving", spec),
            ("sample dataset", "load_sample_dataset", spec),
        ])
        yield from run.step("replica check", "check_replicas", spec)
        status = yield from run.wait_until(
            "synchronous standby", "get_cluster_status", names, healthy, describe, timeout
        )
        yield from run.step("scheduled backup", "ensure_scheduled_backup", spec)
        result = {
            "phase": status["phase"],
            "currentPrimary": status["currentPrimary"],
            "instances": [
                {"name": i["name"], "role": i["role"], "syncState": i["syncState"]} for i in status["instancesStatus"]
            ],
            "endpoints": endpoints.get("data", {}),
        }
    except Exception as err:
        error = err
        yield from compensate(run, spec, made)
    report = yield from run.finish(error, result)
    if error is not None:
        raise StepFailed("deploy_cluster", report["error"])
    return report


def compensate(run: Runbook, spec: dict[str, Any], made: dict[str, bool]) -> Step:
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
