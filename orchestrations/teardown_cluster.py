"""Runbook: tear a cluster down — endpoints, schedules, the cluster and its data, its secret and
identity — keeping its backups unless asked (as deleting a CNPG Cluster leaves the object store)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from orchestrations.runbook import Runbook, Step, StepFailed

bp = df.Blueprint()


def remove_cluster(run: Runbook, spec: dict[str, Any], delete_backups: bool, delete_secret: bool = True) -> Step:
    """Every removal step, in the reverse order deploy made them; shared by teardown and compensation."""
    names = {"namespace": spec["namespace"], "name": spec["name"]}
    yield from run.step("remove endpoints", "remove_endpoints", names)
    yield from run.step("remove scheduled backups", "remove_scheduled_backups", names)
    # a cluster whose archive is deleted with it has nothing left to flush: it may stop at once
    yield from run.step("delete cluster", "delete_cluster", {**names, "graceful": not delete_backups})
    yield from run.wait_until("volumes released", "count_volumes", names, lambda left: left == 0,
                              lambda left: f"{left} volume(s) left", run.options.get("readyTimeoutSeconds", 600))
    if delete_secret:
        yield from run.step("delete app-user secret", "delete_app_secret", spec)
    yield from run.step("remove backup identity", "remove_backup_identity", spec)
    if delete_backups:
        yield from run.step("delete backups", "delete_backups", spec)
    else:
        run.note("delete backups", "skipped", "backups kept (deleteBackups is false)")


def teardown_preflight(run: Runbook, spec: dict[str, Any], delete_backups: bool) -> Step:
    """What removing needs (its Kubernetes verbs; blob deletes with deleteBackups), checked before anything goes."""
    yield from run.step("pre-flight", "preflight", {"spec": spec, "purpose": "teardown",
                                                    "deleteBackups": delete_backups}, retry=False)


@bp.orchestration_trigger(context_name="context")
def teardown_cluster(context: df.DurableOrchestrationContext) -> Step:
    run = Runbook(context, "teardown_cluster")
    error: Exception | None = None
    try:
        delete_backups = bool(run.input.get("deleteBackups"))
        spec = yield from run.step("read cluster spec", "get_stored_spec", run.report["cluster"])
        if spec is not None:
            yield from teardown_preflight(run, spec, delete_backups)
            if not delete_backups:
                yield from run.step("archive the last WAL", "archive_last_wal", spec)
            yield from remove_cluster(run, spec, delete_backups=delete_backups)
        else:
            run.note("delete cluster", "unchanged", "the cluster was already deleted")
            retained = yield from run.step("read kept backups", "get_retained_specs", run.report["cluster"])
            kept_backups = retained if delete_backups else []
            if kept_backups:
                yield from teardown_preflight(run, kept_backups[0], delete_backups)
            for kept in kept_backups:
                yield from run.step("delete backups", "delete_backups", kept)
    except Exception as err:
        error = err
    report = yield from run.finish(error)
    if error is not None:
        raise StepFailed("teardown_cluster", report["error"])
    return report
