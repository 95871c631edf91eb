"""HTTP: POST /api/clusters/{name}/switchover — a planned switchover to a chosen (or the best) standby."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.requests import SwitchoverRequest
from triggers.clusters import start_on_cluster, stored_spec
from triggers.responses import ApiError, parse_request
from triggers.starting import Plan

bp = df.Blueprint()


@bp.route(route="clusters/{name}/switchover", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_switchover(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start switchover_cluster: `kubectl cnpg promote` (a Patroni switchover locally), measured."""
    return await start_on_cluster(req, client, plan_switchover)


def plan_switchover(namespace: str, name: str, body: dict[str, Any]) -> Plan:
    spec = stored_spec(namespace, name)
    request = parse_request(SwitchoverRequest, body)
    if request.target is not None and request.target not in spec.instance_names:
        raise ApiError(400, "InvalidRequest", f"target must be an instance of {name}: "
                       f"{', '.join(spec.instance_names)}", "target")
    return Plan("switchover_cluster", spec.ref, {"switchover": request})
