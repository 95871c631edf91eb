"""Runbook: clean up after a run that was cancelled and did not stop by itself, so it was terminated.

A cooperative cancel lets the run remove what it made; a terminated run could not, so this run does
what can be known from its input: a restore's cluster is deleted with its archive, a drill's probe
tables are dropped. What cannot be known safely (whether a deploy made the cluster or found it) is
left and named in the report, with the request that removes it.
"""

from __future__ import annotations

import contextlib

import azure.durable_functions as df

from orchestrations.runbook import Runbook, Step, StepFailed
from orchestrations.steps import read_spec, remove_cluster
from shared.payloads import OnRun, OwnerPassword, ReleaseLock, Revert
from shared.runs import CompensateInput
from shared.spec import ClusterRef

bp = df.Blueprint()


# the runbooks that run a write probe beside a change of primary or a restart, and what a person checks after
PROBING = {
    "failover_drill": "the drill may have ended before its switch-back: GET the cluster and promote the original "
                      "primary if it matters",
    "switchover_cluster": "the switchover may or may not have happened: GET the cluster for its primary",
    "update_cluster": "the update may have stopped between two restarts: GET the cluster (its drift shows what "
                      "waits for a restart), then PATCH it again, even with nothing to change: the run rolls what "
                      "waits, and restarts nothing twice",
}


@bp.orchestration_trigger(context_name="context")
def compensate_run(context: df.DurableOrchestrationContext) -> Step:
    run = Runbook(context, "compensate_run", CompensateInput, interruptions=())
    terminated = run.input.terminated
    names = run.report.cluster
    error: Exception | None = None
    run.note("terminated run", "done", f"{terminated.runbook} {terminated.operation_id} did not stop within "
                                       f"{terminated.timeout_seconds}s of its cancel request and was terminated")
    try:
        if terminated.report:  # the caller's webhook still waits for the terminated run's report
            with contextlib.suppress(StepFailed):  # recorded in the report; the clean-up matters more
                yield from run.step("post the canceled report", "post_report", terminated.report, retry=False)
        if terminated.runbook == "restore_cluster" and terminated.restore_cluster:
            target = ClusterRef(namespace=names.namespace, name=terminated.restore_cluster)
            spec = yield from read_spec(run, "read restore cluster", target)
            if spec is None:
                run.note("delete cluster", "unchanged", f"restore cluster {target.name} was never made")
            else:
                yield from remove_cluster(run, spec, delete_backups=True, delete_secret=False)
        elif terminated.runbook in PROBING:
            spec = yield from read_spec(run, "read cluster spec")
            if spec is not None:  # its write probe told to stop (it would write on for minutes), its tables gone
                with contextlib.suppress(StepFailed):
                    yield from run.step("stop probe", "stop_probe",
                                        OnRun(spec=spec, operation_id=terminated.operation_id))
                yield from run.step("drop probe", "drop_probe", spec)
                run.note("primary", "skipped", PROBING[terminated.runbook])
        elif terminated.runbook == "rotate_credentials":
            yield from settle_rotation(run, terminated.operation_id)
        elif terminated.runbook == "deploy_cluster":
            run.note("cluster", "skipped", f"whether the deploy made {names.namespace}/{names.name} or found "
                                           "it cannot be known here: DELETE /api/clusters/{name}?deleteBackups=true "
                                           "removes it if it is not wanted")
        else:
            run.note("compensation", "skipped", f"{terminated.runbook} leaves nothing of its own behind")
    except StepFailed as err:
        error = err
    report = yield from run.finish(error, {"terminated": terminated.operation_id})
    if error is not None:
        raise StepFailed("compensate_run", report["error"])
    return report


def settle_rotation(run: Runbook[CompensateInput], operation_id: str) -> Step:
    """Where a rotation stopped cannot be known: every role is made to answer to the password the secret holds
    now (what the applications read), a staged one dropped, the old one forgotten, and the other clusters'
    locks the rotation took given back."""
    spec = yield from read_spec(run, "read cluster spec")
    if spec is None:
        run.note("rotation", "skipped", "the cluster is gone")
        return
    sharing = yield from run.step("clusters of the secret", "clusters_sharing_secret", spec)
    yield from run.step("drop staged password", "revert_app_password", Revert(spec=spec, committed=False))
    for name in sharing.data["clusters"]:
        other = spec if name == spec.name else (yield from read_spec(run, f"read {name}", ClusterRef(
            namespace=spec.namespace, name=name)))
        if other is not None:
            yield from run.step(f"set password on {name}", "set_owner_password", OwnerPassword(spec=other,
                                                                                            which="password"))
    yield from run.step("forget old password", "forget_previous_password", spec)
    for name in sharing.data["clusters"][1:]:
        yield from run.step(f"release lock on {name}", "release_lock", ReleaseLock(
            namespace=spec.namespace, name=name, operation_id=operation_id))
