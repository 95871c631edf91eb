"""Day-2 updates: the pre-flight of a change, an instance restarted in place, the settings each instance has in
force, read back to prove the change took (compared with the spec in shared/changes.py), and how far an
operator that rolls changes itself has got."""

from __future__ import annotations

import azure.durable_functions as df

from activities import platform, typed
from activities.drills import readiness_problems
from shared.outcome import Outcome, done
from shared.payloads import RestartInstance, UpdateCheck
from shared.platform import PreflightFailed
from shared.settings import Settings
from shared.spec import ClusterSpec
from shared.status import HEALTHY, WAITING_FOR_USER, InstanceSettings, Rollout

bp = df.Blueprint()


@bp.activity_trigger(input_name="check")
@typed
def update_preflight(check: UpdateCheck) -> Outcome:
    """Refuse, touching nothing, unless the cluster is healthy with an in-sync standby (a restart or a scale must
    not be the second fault) and the platform can do every change of the plan."""
    spec = check.spec
    status = platform().cluster_status(spec.namespace, spec.name)
    # an operator's supervised update cut short waits for its primary: resuming it is what it waits for
    problems, _ = readiness_problems(status, Settings.from_env().drill_max_lag_bytes, (HEALTHY, WAITING_FOR_USER))
    # nothing to be in sync with: one instance, no synchronous replicas asked, or none running (locally
    # synchronous_standby_names is then empty; on AKS CNPG's status does not carry it: the spec says)
    if status.instances == 1 or spec.synchronous_replicas == 0 or status.synchronous_standby_names == "":
        problems = [p for p in problems if p != "no in-sync standby"]
    verdict = platform().weigh_changes(spec, check.changes)
    problems += verdict.refused
    if problems:
        raise PreflightFailed("update refused: " + "; ".join(problems))
    roles = {i.name: i.role for i in status.instances_status}
    return done(f"healthy, primary {status.current_primary}; {check.changes.summary()}",
                primary=status.current_primary, roles=roles, skipped=verdict.skipped, rolledBy=verdict.rolled_by)


@bp.activity_trigger(input_name="request")
@typed
def restart_instance(request: RestartInstance) -> Outcome:
    return platform().restart_instance(request.spec, request.instance)


@bp.activity_trigger(input_name="spec")
@typed
def read_instance_settings(spec: ClusterSpec) -> list[InstanceSettings]:
    """Every instance's values of the spec's parameters, and what waits there for a restart."""
    return platform().instance_settings(spec, sorted(spec.postgresql.parameters))


@bp.activity_trigger(input_name="spec")
@typed
def read_rollout(spec: ClusterSpec) -> Rollout:
    """How far the platform's operator has rolled the spec out (where it rolls changes itself)."""
    return platform().rollout(spec)
