"""HTTP: /api/clusters/{name}/drills/failover — rehearse a failover and measure it."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.requests import DrillRequest
from triggers.clusters import start_on_cluster, stored_spec
from triggers.responses import parse_request
from triggers.starting import Plan

bp = df.Blueprint()


@bp.route(route="clusters/{name}/drills/failover", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_failover_drill(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start failover_drill (`graceful` like a pod deleted with a grace period, `crash` like a lost node)."""
    return await start_on_cluster(req, client, plan_drill)


def plan_drill(namespace: str, name: str, body: dict[str, Any]) -> Plan:
    spec = stored_spec(namespace, name)
    drill = parse_request(DrillRequest, body)
    return Plan("failover_drill", spec.ref, {"drill": drill})
