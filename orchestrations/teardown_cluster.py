"""Runbook: tear a cluster down — endpoints, schedules, the cluster and its data, its secret and
identity — keeping its backups unless asked (as deleting a CNPG Cluster leaves the object store)."""

from __future__ import annotations

import azure.durable_functions as df

from orchestrations.runbook import Runbook, Step, StepFailed
from orchestrations.steps import read_spec, remove_cluster
from shared.payloads import Preflight
from shared.runs import TeardownInput
from shared.spec import ClusterSpec

bp = df.Blueprint()


def teardown_preflight(run: Runbook, spec: ClusterSpec, delete_backups: bool) -> Step:
    """What removing needs (its Kubernetes verbs; blob deletes with deleteBackups), checked before anything goes."""
    yield from run.step("pre-flight", "preflight", Preflight(spec=spec, purpose="teardown",
                                                             delete_backups=delete_backups), retry=False)


@bp.orchestration_trigger(context_name="context")
def teardown_cluster(context: df.DurableOrchestrationContext) -> Step:
    run = Runbook(context, "teardown_cluster", TeardownInput)
    delete_backups = run.input.delete_backups
    error: Exception | None = None
    try:
        spec = yield from read_spec(run, "read cluster spec")
        if spec is not None:
            yield from teardown_preflight(run, spec, delete_backups)
            if not delete_backups:
                yield from run.step("archive the last WAL", "archive_last_wal", spec)
            yield from remove_cluster(run, spec, delete_backups=delete_backups)
        else:
            run.note("delete cluster", "unchanged", "the cluster was already deleted")
            retained = yield from run.step("read kept backups", "get_retained_specs", run.names, answer=ClusterSpec)
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
