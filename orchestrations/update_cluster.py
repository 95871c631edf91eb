"""Runbook: change a running cluster (`PATCH /api/clusters/{name}`) the way CNPG rolls a change — checked
before, watched during, measured and proven after.

Gates first: a healthy cluster, WAL archiving working and archived up to now, for a change that restarts
instances a backup taken and verified, and for a major upgrade a restore test of that backup. A write probe
runs beside the change. The new spec is applied (reloadable parameters take at once, instances are added or
removed), then every instance that waits for a restart is restarted in CNPG's order: standbys from the
highest serial, the primary last — in place, or after a switchover to the most advanced standby
(`primaryUpdateMethod`), and with `supervised` only once a person approves. Where the platform's operator
rolls the change itself (CNPG on AKS), pgha watches it through instead, and answers CNPG's "Waiting for user
action" with the approved switchover or restart. The report gives each restart's client-seen outage (RTO)
and the acknowledged writes lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import azure.durable_functions as df

from orchestrations.runbook import HOST_RESTARTED, Runbook, Step, StepFailed, first_line
from orchestrations.steps import (
    cluster_status,
    healthy,
    measure_probe,
    no_writes_lost,
    outages_between,
    primary_is,
    probe_baseline,
    read_spec,
    restore_test,
    settle_and_clean_up,
    standbys_in_sync,
    start_probe,
    take_backup,
    wait_for_status,
    wait_settled,
)
from shared.backups import backup_name
from shared.changes import ChangePlan, in_force, reloaded
from shared.payloads import InventoryRequest, Promote, RestartInstance, Switchover, UpdateCheck
from shared.runs import UpdateInput
from shared.spec import ClusterSpec
from shared.status import ClusterStatus, InstanceSettings, Rollout, serial_of

bp = df.Blueprint()

# pgha's own settings, re-applied by the deploy step that owns each (the rest live in the stored spec alone)
SETTINGS_STEPS = (("backup.", "scheduled backup", "ensure_scheduled_backup"),
                  ("endpoints.", "endpoints", "expose_endpoints"),
                  ("monitoring.", "monitoring", "configure_monitoring"))


class NothingToDo(Exception):
    """The run ends at once, succeeded: nothing changes and nothing waits for a restart."""


@bp.orchestration_trigger(context_name="context")
def update_cluster(context: df.DurableOrchestrationContext) -> Step:
    # like a switchover, a host restart interrupts it: its write probe's process is gone with the host
    run = Runbook(context, "update_cluster", UpdateInput, interruptions=("cancel", HOST_RESTARTED))
    spec, plan = run.input.spec, run.input.changes
    error: Exception | None = None
    result: dict[str, Any] = {"changes": [c.dump() for c in plan.changes]}
    stored: ClusterSpec | None = None
    probing = applied = False
    try:
        stored = yield from read_spec(run, "read cluster spec")
        if stored is None:
            raise StepFailed("read cluster spec", "the cluster does not exist")
        if run.input.base is not None and stored.dump() != run.input.base.dump() and stored.dump() != spec.dump():
            raise StepFailed("read cluster spec", "the cluster's spec changed since this update was planned: PATCH "
                                                  "again to plan against it")
        if not plan.changes:  # a resume, or a subscription's patch that changes nothing
            waiting = yield from run.step("instances waiting for a restart", "read_rollout", spec, answer=Rollout)
            if not waiting.to_restart:
                run.note("change plan", "skipped", "nothing to change, and no instance waits for a restart")
                raise NothingToDo
        before = yield from run.step("pre-flight", "update_preflight", UpdateCheck(spec=spec, changes=plan),
                                     retry=False)
        result["rolesBefore"] = before.data["roles"]
        operator_rolls = before.data.get("rolledBy") == "operator"
        yield from recovery_point(run, stored, plan.restarts)
        if plan.of("major"):
            yield from restore_first(run)
        probe = yield from start_probe(run, stored)
        probing = True
        yield from probe_baseline(run)
        # the pods a change must make again (an image, placement): no other sign says the operator has begun
        remade = operator_rolls and plan.remakes_pods
        before_pods = (yield from run.step("pods before", "read_rollout", stored, answer=Rollout)).pods if remade \
            else {}
        yield from run.step("apply spec", "apply_cluster", spec)
        applied = True
        for field, reason in before.data["skipped"].items():
            run.note(field, "skipped", reason)
        if plan.of("scale"):
            status = yield from wait_for_status(run, "instances", healthy, run.options.ready_timeout_seconds)
            result["instances"] = [i.name for i in status.instances_status]
        parameters = not plan.changes or any(c.field.startswith("postgresql.parameters.") for c in plan.changes)
        if operator_rolls:
            if not plan.changes:  # a resume: what waits is a restart the plan did not foresee, gated all the same
                yield from backup_first(run, stored)
            result["restarts"] = yield from follow_rollout(run, spec, plan, set(before_pods.values()) - {""})
            if plan.of("major"):
                yield from new_major_baseline(run, spec)
        else:
            result["restarts"] = yield from pgha_rolls(run, spec, stored, plan, parameters)
        for prefix, step, activity in SETTINGS_STEPS:
            if any(c.field.startswith(prefix) for c in plan.of("settings")):
                yield from run.step(step, activity, spec)
        if parameters:
            settled = yield from run.wait_until(
                "settings in force", "read_instance_settings", spec, lambda answer: not in_force(spec, answer),
                lambda answer: "; ".join(in_force(spec, answer)) or "all in force",
                run.options.ready_timeout_seconds, answer=InstanceSettings)
            result["settings"] = {i.name: i.values for i in settled}
        after = yield from wait_for_status(run, "cluster healthy", healthy, run.options.ready_timeout_seconds)
        result["rolesAfter"] = {i.name: i.role for i in after.instances_status}
        measured, lost_ids = yield from measure_probe(run, stored, probe, result)
        probing = False
        for restart in result["restarts"]:
            restart["rtoSeconds"] = max(outages_between(
                measured.windows, datetime.fromisoformat(restart["startedAt"]),
                datetime.fromisoformat(restart["endedAt"])), default=0.0)
        no_writes_lost(result, lost_ids)
        # done means the next change's pre-flight passes: after restarts (the operator's, the plan's, or pgha's
        # own of instances left waiting) or a scale, the standbys the spec keeps in sync are so, and stay so
        if plan.restarts or plan.of("scale") or (result["restarts"] and not operator_rolls):
            yield from wait_settled(run, ("standbys in sync", "standbys settle", "standbys stay in sync"),
                                    standbys_in_sync(spec), run.options.ready_timeout_seconds)
    except NothingToDo:
        pass
    except Exception as err:
        error = err
    if stored is not None and applied and plan.of("major") and error is not None:
        yield from roll_back_major(run, stored, error, result)
    if stored is not None and "rolesBefore" in result:
        error = yield from settle_and_clean_up(run, stored, error, probing, result, settle=True)
    report = yield from run.finish(error, result)
    if error is not None:
        raise StepFailed("update_cluster", report["error"])
    return report


def pgha_rolls(run: Runbook[UpdateInput], spec: ClusterSpec, stored: ClusterSpec, plan: ChangePlan,
               parameters: bool) -> Step:
    """Where no operator rolls the change (Patroni): what took at once, what waits for a restart, and those
    restarted in CNPG's order."""
    # each instance read back when parameters change, or when nothing does (a run that resumes an update
    # cut short): what took at once, what waits for a restart
    pending: list[str] = []
    if parameters:
        settings = yield from run.wait_until(
            "configuration reloaded", "read_instance_settings", spec, lambda answer: reloaded(spec, answer),
            _pending, run.options.ready_timeout_seconds, answer=InstanceSettings)
        pending = [i.name for i in settings if i.pending_restart]
    status = yield from cluster_status(run, "roles")
    # and what the HA manager itself says waits for a restart (Patroni's pending_restart; an update cut short)
    pending = sorted(set(pending) | {i.name for i in status.instances_status if i.pending_restart})
    if pending and not plan.restarts:  # a restart the plan did not foresee: the backup gate all the same
        yield from backup_first(run, stored)
    return (yield from roll(run, spec, pending, status))


def _pending(instances: list[InstanceSettings]) -> str:
    silent = [f"{i.name} does not answer" for i in instances if i.error]
    waiting = [f"{i.name} ({', '.join(i.pending_restart)})" for i in instances if i.pending_restart]
    said = silent + ([f"waiting for a restart: {', '.join(waiting)}"] if waiting else [])
    return "; ".join(said) or "every parameter in force"


def recovery_point(run: Runbook[UpdateInput], spec: ClusterSpec, restarts: bool) -> Step:
    """The gates on recoverability: WAL archiving works and has archived up to now; before a change that
    restarts instances, also a backup taken and verified (continuous WAL from it, a fresh recovery point)."""
    yield from run.step("WAL archiving", "check_archiving", spec)
    yield from run.step("WAL archived now", "check_wal_archiving", spec)
    if restarts:
        yield from backup_first(run, spec)


def roll_back_major(run: Runbook[UpdateInput], stored: ClusterSpec, error: Exception, result: dict[str, Any]) -> Step:
    """A major upgrade the operator cannot finish (its pg_upgrade Job failed): the old image applied again,
    which CNPG takes as the rollback while the old data directory is untouched. Only on that sign: once
    pg_upgrade has run, the old image would be a downgrade CNPG refuses."""
    rollout = error.answer if isinstance(error, StepFailed) else None
    if not isinstance(rollout, Rollout) or not rollout.major_upgrade_failed:
        return
    # the old major's own image: the operator's default may have moved on since the cluster was made
    back = stored if stored.image_name or not rollout.previous_image else stored.model_copy(
        update={"image_name": rollout.previous_image})
    try:
        yield from run.step("roll back the image", "apply_cluster", back)
        result["rolledBackTo"] = back.image_name or "the operator's default image"
    except StepFailed:
        pass  # recorded in the report; the run fails with its first error


def restore_first(run: Runbook[UpdateInput]) -> Step:
    """Before a major upgrade: the backup just taken restored into a new cluster, which is removed again."""
    try:
        yield from restore_test(run, [])
    except StepFailed:
        raise
    except Exception as err:  # the sub-run failed: its own report says why
        run.note("restore test", "failed", first_line(err))
        raise StepFailed("restore test", f"the backup taken before the major upgrade did not restore: "
                                         f"{first_line(err)}") from None


def new_major_baseline(run: Runbook[UpdateInput], spec: ClusterSpec) -> Step:
    """After a major upgrade: a backup of the new system into its own archive, verified — no backup from before
    recovers to a point after it (CNPG's docs: take one as soon as possible)."""
    name = backup_name(spec.name, f"{run.input.operation_id}-new-major")
    backup = yield from take_backup(run, spec, name)
    yield from run.step("verify new major's backup", "inventory_backups",
                        InventoryRequest(spec=spec, backup_id=backup.backup_id))


def backup_first(run: Runbook[UpdateInput], spec: ClusterSpec) -> Step:
    """Before instances restart: a backup taken and verified (continuous WAL from it, a fresh recovery point)."""
    backup = yield from take_backup(run, spec, backup_name(spec.name, run.input.operation_id))
    yield from run.step("verify backup", "inventory_backups", InventoryRequest(spec=spec, backup_id=backup.backup_id))


def roll(run: Runbook[UpdateInput], spec: ClusterSpec, pending: list[str], status: ClusterStatus) -> Step:
    """CNPG's rolling update of the instances that wait for a restart: standbys from the highest serial, then
    the primary by `primaryUpdateMethod`, after an approval when `supervised`. Each restart's window."""
    if not pending:
        run.note("rolling restart", "skipped", "no instance waits for a restart")
        return []
    primary = status.current_primary
    restarts: list[dict[str, Any]] = []
    for name in sorted((n for n in pending if n != primary), key=serial_of, reverse=True):
        restarts.append((yield from restart(run, spec, name, "standby")))
    if primary not in pending:
        return restarts
    method = spec.primary_update_method
    if spec.primary_update_strategy == "supervised":
        yield from approve_primary(run, spec, primary, method)
    return restarts + (yield from update_primary(run, spec, primary, method, restart_former=True))


def follow_rollout(run: Runbook[UpdateInput], spec: ClusterSpec, plan: ChangePlan, old_pods: set[str]) -> Step:
    """The operator's own rolling update, watched until every instance runs the spec (and no pod of `old_pods`
    is left, where the change makes them again); its "Waiting for user action" (a supervised primary)
    answered once a person approves, by a switchover or an in-place restart as `primaryUpdateMethod` says.
    One window for the whole roll (the operator restarts each instance)."""
    started = run.now
    actions: list[dict[str, Any]] = []
    while True:
        after = f", after the {actions[-1]['action']}" if actions else ""
        rollout = yield from run.wait_until(
            f"rolling update{after}", "read_rollout", spec,
            lambda answer: answer.state != "rolling" and not (answer.state == "done" and kept(answer, old_pods)),
            lambda answer: "; ".join([answer.describe(), *kept(answer, old_pods)]),
            # the operator makes each pod again in turn (a major upgrade: pg_upgrade, then each standby cloned)
            run.options.ready_timeout_seconds * (spec.instances + bool(plan.of("major"))), answer=Rollout)
        if rollout.state == "done":
            break
        if actions:  # asked once already: the operator should not wait for a person again
            raise StepFailed("rolling update", f"the operator waits for a person again after the approved "
                                               f"{actions[-1]['action']}: {rollout.describe()}")
        if not rollout.current_primary:
            raise StepFailed("rolling update", f"the operator waits for a person but names no primary: "
                                               f"{rollout.describe()}")
        method = primary_method(spec, plan, rollout)
        yield from approve_primary(run, spec, rollout.current_primary, method)
        # the former primary, a standby now, is the operator's to restart
        actions += yield from update_primary(run, spec, rollout.current_primary, method, restart_former=False)
    return [{"instance": "every instance", "role": "the operator's rolling update", "action": "rolling update",
             "startedAt": started.isoformat(), "endedAt": run.now.isoformat()}, *actions]


def primary_method(spec: ClusterSpec, plan: ChangePlan, rollout: Rollout) -> str:
    """How to answer the operator's wait for the primary: an in-place restart applies settings only, so a pod
    that must be made again (image, resources) needs a switchover; a decrease of a hot-standby-sensitive
    setting is the primary's first (no standby may run below its primary), so never a switchover then."""
    if plan.decreases_hot_standby_setting:
        return "restart"
    return "switchover" if rollout.current_primary in rollout.outdated else spec.primary_update_method


def kept(rollout: Rollout, old_pods: set[str]) -> list[str]:
    """The instances whose pod the operator has not made again yet."""
    return [f"{name} not yet recreated" for name, uid in rollout.pods.items() if uid in old_pods]


def approve_primary(run: Runbook[UpdateInput], spec: ClusterSpec, primary: str | None, method: str) -> Step:
    """`primaryUpdateStrategy: supervised`: a person approves the primary's update; rejected, the run ends with
    the standbys updated and the primary still waiting."""
    approved = yield from run.approval(f"update the primary {primary} ({method})",
                                       run.options.approval_timeout_seconds)
    if not approved:
        raise StepFailed("approval", f"the update of the primary {primary} was not approved: the standbys "
                                     "are updated, the primary still waits for a restart")


def update_primary(run: Runbook[UpdateInput], spec: ClusterSpec, primary: str | None, method: str,
                   restart_former: bool) -> Step:
    """The primary's update: in place, or a switchover to the most advanced standby (the former primary then
    restarted where pgha does the restarts)."""
    if method != "switchover":
        return [(yield from restart(run, spec, primary or "", "primary"))]
    done = [(yield from switch_over(run, spec, primary, settled=restart_former))]
    if restart_former:
        done.append((yield from restart(run, spec, primary or "", "former primary")))
    return done


def restart(run: Runbook[UpdateInput], spec: ClusterSpec, instance: str, role: str) -> Step:
    """One instance restarted in place, then the cluster healthy again (the standby streaming, in the quorum)."""
    started = run.now
    yield from run.step(f"restart {instance}", "restart_instance", RestartInstance(spec=spec, instance=instance))
    yield from wait_for_status(run, f"{instance} back", healthy, run.options.ready_timeout_seconds)
    return {"instance": instance, "role": role, "action": "restart", "startedAt": started.isoformat(),
            "endedAt": run.now.isoformat()}


def switch_over(run: Runbook[UpdateInput], spec: ClusterSpec, primary: str | None, settled: bool) -> Step:
    """The primary's update by switchover: the most advanced in-sync standby (already restarted) promoted; the
    cluster healthy again (`settled`), or where the operator remakes the former primary's pod, the new primary
    in place (the rolling update's wait sees the rest)."""
    started = run.now
    chosen = yield from run.step("choose new primary", "switchover_preflight", Switchover(spec=spec), retry=False)
    target = chosen.data["target"]
    yield from run.step(f"promote {target}", "promote_instance", Promote(spec=spec, instance=target))
    ready = primary_is(target) if settled else (lambda status: status.current_primary == target)
    yield from wait_for_status(run, "new primary ready", ready, run.options.drill_timeout_seconds)
    return {"instance": target, "role": f"new primary (was {primary})", "action": "switchover",
            "startedAt": started.isoformat(), "endedAt": run.now.isoformat()}
