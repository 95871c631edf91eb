"""HTTP: PATCH /api/clusters/{name} — change a running cluster with a partial ClusterSpec (JSON merge patch).

The change is planned here, before anything moves: each difference classified as CNPG acts on it (online,
rolling, scale, storage, major, settings; shared/changes.py), what the real system refuses answered 400 naming
the field. `?dryRun=true` answers the plan (and what the platform would refuse or skip of it) and touches
nothing; a patch that changes nothing starts nothing, unless instances still wait for a restart (an update cut
short): then the run rolls them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.changes import ChangePlan, Verdict, patched_spec, plan_changes
from shared.model import SpecError
from shared.platforms import platform_for
from triggers.clusters import name_of, namespace_of, stored_spec
from triggers.responses import ApiError, json_response, query_flag, unexpected
from triggers.starting import Plan, operation_body, start_operation

bp = df.Blueprint()


@bp.route(route="clusters/{name}", methods=["PATCH"])
@bp.durable_client_input(client_name="client")
async def start_update(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start update_cluster for the change a partial ClusterSpec asks; 200 with the plan for a dry run or a
    patch that changes nothing."""
    try:
        body, callback = operation_body(req, required=True)
        dry_run = query_flag(req, "dryRun")
        plan = await asyncio.to_thread(plan_update, namespace_of(req), name_of(req), body)
        changes: ChangePlan = plan.fields["changes"]
        waiting, verdict = await asyncio.to_thread(look_before, plan)
        if dry_run or not (changes.changes or waiting):
            return json_response(200, {
                "runbook": "update_cluster", "dryRun": dry_run, "summary": changes.summary(),
                "changes": [c.dump() for c in changes.changes], "refused": verdict.refused, "skipped": verdict.skipped,
                "pendingRestart": waiting, "spec": plan.fields["spec"].dump()})
        # nothing changes but instances wait for a restart (an update cut short): the run rolls them
        return await start_operation(req, client, plan, callback)
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


def look_before(plan: Plan) -> tuple[list[str], Verdict]:
    """Touching nothing: the instances that wait for a restart now, and what the platform would refuse or skip
    of the plan (its run's pre-flight says the same)."""
    platform = platform_for()
    try:
        waiting = platform.rollout(plan.fields["spec"]).to_restart
    except Exception:  # the instances do not read now: nothing known to wait (the run's pre-flight reads again)
        waiting = []
    return waiting, platform.weigh_changes(plan.fields["spec"], plan.fields["changes"])


def plan_update(namespace: str, name: str, body: dict[str, Any]) -> Plan:
    stored = stored_spec(namespace, name)
    try:
        spec = patched_spec(stored, body)
        changes = plan_changes(stored, spec, platform_for().running_major(namespace, name))
    except SpecError as err:
        raise ApiError(400, "InvalidSpec", err.message, err.field) from None
    return Plan("update_cluster", spec.ref, {"spec": spec, "changes": changes, "base": stored})
