"""Runbook: rehearse an unplanned failover — delete the primary, see a standby take over, the old
primary rejoin, promote it back — while a write probe measures what clients saw (RTO) and lost (RPO)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from orchestrations.runbook import HOST_RESTARTED, Runbook, Step, StepFailed
from orchestrations.steps import (
    clean_up_probe,
    describe,
    healthy,
    measure_probe,
    no_writes_lost,
    outages_between,
    primary_is,
    probe_baseline,
    read_spec,
    standbys_in_sync,
    start_probe,
    wait_for_status,
    wait_settled,
)
from shared.payloads import DeletePrimary, OnRun, Promote
from shared.runs import DrillInput
from shared.spec import ClusterSpec
from shared.status import ClusterStatus

bp = df.Blueprint()

PLAN = [
    "pre-flight: healthy, every instance ready, an in-sync standby, lag under the limit, opted in",
    "start the write probe (numbered rows, synchronous commit, through the rw endpoint)",
    "delete the primary ({mode})",
    "wait for a new primary",
    "verify the new primary takes writes",
    "wait for the old primary to rejoin as a standby",
    "switch back: promote the original primary",
    "wait for the standbys to be in sync, and still so a few HA loops later",
    "verify writes on the original primary",
    "stop the probe; RTO from its failure windows, RPO from acknowledged writes missing",
    "drop the probe tables",
]


@bp.orchestration_trigger(context_name="context")
def failover_drill(context: df.DurableOrchestrationContext) -> Step:
    # a host restart interrupts a drill instead of resuming it: its probe's process is gone, and replaying a
    # primary's deletion blind would be wrong (devhost: function_app.INTERRUPT_ON_RESTART)
    run = Runbook(context, "failover_drill", DrillInput, interruptions=("cancel", HOST_RESTARTED))
    mode = run.input.drill.mode
    dry_run = run.input.drill.dry_run
    timeout = run.options.drill_timeout_seconds
    error: Exception | None = None
    result: dict[str, Any] = {"mode": mode}
    probe_started = deleted = False
    original: str | None = None
    spec: ClusterSpec | None = None
    try:
        spec = yield from read_spec(run, "read cluster spec")
        if spec is None:
            raise StepFailed("read cluster spec", "the cluster does not exist")
        before = yield from run.step("pre-flight", "drill_preflight", spec, retry=False)
        original = before.data["primary"]
        result["rolesBefore"] = before.data["roles"]
        if dry_run:
            for line in PLAN[1:]:
                run.note(line.format(mode=mode), "planned", "dry run: nothing done")
            result["dryRun"] = True
        else:
            with_ids = OnRun(spec=spec, operation_id=run.input.operation_id)
            probe = yield from start_probe(run, spec)
            probe_started = True
            yield from probe_baseline(run)
            failover_at = run.now
            deleted = True  # from here on, a drill cut short puts the original primary back if it can
            yield from run.step("delete primary", "delete_primary", DeletePrimary(spec=spec, mode=mode))
            new = yield from wait_for_status(
                run, "wait new primary", lambda s: bool(s.current_primary) and s.current_primary != original, timeout)
            result["rolesDuring"] = {i.name: i.role if i.ready else "down" for i in new.instances_status}
            result["failoverTo"] = new.current_primary
            yield from run.step("verify writes on the new primary", "verify_writes", with_ids)
            yield from wait_for_status(run, "old primary rejoins", healthy, timeout)
            switchback_at = run.now
            yield from run.step("switch back", "promote_instance", Promote(spec=spec, instance=original))
            yield from wait_for_status(run, "original primary back", primary_is(original), timeout)
            # done means the next run's pre-flight passes: the standbys the spec keeps in sync are so, and stay so
            after = yield from wait_settled(run, ("standbys in sync", "standbys settle", "standbys stay in sync"),
                                            standbys_in_sync(spec), timeout)
            result["rolesAfter"] = {i.name: i.role for i in after.instances_status}
            yield from run.step("verify writes after switch-back", "verify_writes", with_ids)
            deleted = False  # the original is back
            measured, lost_ids = yield from measure_probe(run, spec, probe, result)
            probe_started = False
            failover = outages_between(measured.windows, failover_at, switchback_at)
            switchback = outages_between(measured.windows, switchback_at, None)
            result["rtoSeconds"] = {"failover": max(failover, default=0.0), "switchback": max(switchback, default=0.0)}
            run.note("RTO", "done", f"clients could not write for {result['rtoSeconds']['failover']}s at the "
                     f"failover and {result['rtoSeconds']['switchback']}s at the switch-back")
            no_writes_lost(result, lost_ids)
    except Exception as err:
        error = err
    if spec is not None and not dry_run and "rolesBefore" in result:
        run.stop_listening()
        # each clean-up step on its own: one that fails leaves the others to run
        if error is not None and deleted and original is not None:
            try:
                yield from put_original_back(run, spec, original, result)
            except StepFailed as failed:
                error = error or failed
        cleanup_failed = yield from clean_up_probe(run, spec, probe_started)  # always: `or` would skip it
        error = error or cleanup_failed
    report = yield from run.finish(error, result)
    if error is not None:
        raise StepFailed("failover_drill", report["error"])
    return report


def put_original_back(run: Runbook, spec: ClusterSpec, original: str, result: dict[str, Any]) -> Step:
    """A drill cut short after deleting the primary (a failed step, a host restart): the original primary is
    promoted back when it is a ready standby, and the report says what state the cluster was left in."""
    timeout = run.options.drill_timeout_seconds
    status: ClusterStatus = yield from wait_for_status(run, "cluster settles", healthy, timeout, required=False)
    ready = {i.name for i in status.instances_status if i.ready}
    if status.current_primary not in (None, original) and original in ready and status.healthy:
        yield from run.step("put the original primary back", "promote_instance", Promote(spec=spec, instance=original))
        status = yield from wait_for_status(run, "original primary back", primary_is(original), timeout,
                                            required=False)
    else:
        run.note("put the original primary back", "skipped",
                 f"{original} is the primary" if status.current_primary == original
                 else f"{original} is not a ready standby of a healthy cluster: left as it is")
    result["leftWith"] = describe(status)
