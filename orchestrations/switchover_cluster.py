"""Runbook: a planned switchover (`kubectl cnpg promote`) — a ready, in-sync standby becomes the primary and
the old primary follows it as a standby — while a write probe measures what clients saw (RTO) and lost (RPO)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from orchestrations.runbook import HOST_RESTARTED, Runbook, Step, StepFailed
from orchestrations.steps import (
    measure_probe,
    no_writes_lost,
    outages_between,
    primary_is,
    probe_baseline,
    read_spec,
    settle_and_clean_up,
    start_probe,
    streams_in_sync,
    wait_for_status,
    wait_settled,
)
from shared.payloads import OnRun, Promote, Switchover
from shared.runs import SwitchoverInput
from shared.spec import ClusterSpec

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def switchover_cluster(context: df.DurableOrchestrationContext) -> Step:
    # like a drill, a host restart interrupts it: its write probe's process is gone with the host
    run = Runbook(context, "switchover_cluster", SwitchoverInput, interruptions=("cancel", HOST_RESTARTED))
    error: Exception | None = None
    result: dict[str, Any] = {}
    spec: ClusterSpec | None = None
    probing = promoted = False
    try:
        spec = yield from read_spec(run, "read cluster spec")
        if spec is None:
            raise StepFailed("read cluster spec", "the cluster does not exist")
        before = yield from run.step("pre-flight", "switchover_preflight",
                                     Switchover(spec=spec, target=run.input.switchover.target), retry=False)
        target = before.data["target"]
        result.update({"from": before.data["primary"], "to": target, "rolesBefore": before.data["roles"]})
        probe = yield from start_probe(run, spec)
        probing = True
        yield from probe_baseline(run)
        switched_at = run.now
        promoted = True  # from here, a run cut short says where it left the primary
        yield from run.step("promote", "promote_instance", Promote(spec=spec, instance=target))
        yield from wait_for_status(run, "new primary ready", primary_is(target), run.options.drill_timeout_seconds)
        # done means the old primary follows as an in-sync standby (a pg_rewind may come first: the ready
        # timeout), so a switchback, or the next change, is not refused while it still catches up
        rejoined = streams_in_sync(before.data["primary"], spec.synchronous_replicas > 0)
        after = yield from wait_settled(run, ("old primary rejoins", "old primary settles", "old primary in sync"),
                                        rejoined, run.options.ready_timeout_seconds)
        result["rolesAfter"] = {i.name: i.role for i in after.instances_status}
        yield from run.step("verify writes on the new primary", "verify_writes",
                            OnRun(spec=spec, operation_id=run.input.operation_id))
        measured, lost_ids = yield from measure_probe(run, spec, probe, result)
        probing = False
        outage = max(outages_between(measured.windows, switched_at, None), default=0.0)
        result["rtoSeconds"] = outage
        run.note("RTO", "done", f"clients could not write for {outage}s while {target} took over")
        no_writes_lost(result, lost_ids)
    except Exception as err:
        error = err
    if spec is not None and "rolesBefore" in result:
        error = yield from settle_and_clean_up(run, spec, error, probing, result, settle=promoted)
    report = yield from run.finish(error, result)
    if error is not None:
        raise StepFailed("switchover_cluster", report["error"])
    return report
