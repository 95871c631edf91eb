"""`pgha plan` and `?dryRun=true`: a runbook walked, step by step, against the AKS adapter's recorders.

The steps are the runbook's own (orchestrations/planning.py runs its orchestrator), so a plan cannot
drift from the run; each platform step's calls are what the adapter's own code sends.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any

import yaml

from orchestrations.planning import PlanningContext, Refused, walk
from shared.platforms import plan_world, planning
from shared.registry import registered
from shared.runs import INPUTS, RunOptions
from shared.spec import ClusterSpec

RUNBOOKS = {"deploy": "deploy_cluster", "teardown": "teardown_cluster", "restore": "restore_cluster",
            "verify": "verify_backups", "drill": "failover_drill"}


@functools.cache
def app_functions(app: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The app's registry, read once: get_functions() rebuilds (and resets) the app's bindings each time."""
    return registered(app)


def plan(runbook: str, spec: ClusterSpec) -> list[dict[str, Any]]:
    """Every call the runbook's first run would make on AKS, by step; PreflightFailed when its pre-flight
    refuses, as the run would."""
    import function_app  # the app imports every trigger, this one too: its registry is read when a plan is asked

    if runbook not in RUNBOOKS:
        raise ValueError(f"runbook must be one of {', '.join(RUNBOOKS)}")
    orchestrators, activities = app_functions(function_app.app)
    name = RUNBOOKS[runbook]
    world = plan_world(None if runbook == "deploy" else spec)
    run_input = INPUTS[name](
        operation_id="<operation id>", namespace=spec.namespace, name=spec.name, options=RunOptions(),
        requested_at=datetime.now(UTC).isoformat(), **({"spec": spec} if runbook == "deploy" else {}),
    )
    context = PlanningContext(run_input.dump(), lambda step, activity, payload: world.answer(
        step, activity, payload, lambda called, given: activities[called](given)), datetime.now(UTC))
    with planning(world.platform):  # this thread's activities only: a real run beside the plan is untouched
        try:
            report = walk(orchestrators[name], context)
        except Refused as refused:
            raise refused.reason from None
    if report.get("status") != "succeeded":  # the planned world lacks something the runbook reads: say so
        raise RuntimeError(f"the plan of {runbook} did not go through: {report.get('error')}")
    return world.entries


def render(entries: list[dict[str, Any]]) -> str:
    """One YAML document per call: its step, verb and path as comments, the object (or body) as YAML."""
    documents = []
    for entry in entries:
        head = [f"# step: {entry['step']}"]
        if entry.get("call"):
            head.append(f"# {entry['call']}  ({entry['note']})")
        else:
            head.append(f"# no call: {entry['note']}")
        body = entry.get("object") or entry.get("body") or {"noCall": entry["note"]}
        documents.append("\n".join(head) + "\n" + yaml.safe_dump(json.loads(json.dumps(body)), sort_keys=False,
                                                                     width=200))
    return "---\n".join(documents)
