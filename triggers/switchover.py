"""HTTP: POST /api/clusters/{name}/switchover — a planned switchover to a chosen (or the best) standby."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.platforms import platform_for
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
    if request.target is not None:
        # instances keep their serials for life (a scaled cluster's are not 1..N): the platform lists them
        try:
            instances = [i.name for i in platform_for().cluster_status(namespace, name).instances_status]
        except Exception:  # the status does not read now: the run's pre-flight checks the target all the same
            instances = []
        if instances and request.target not in instances:
            raise ApiError(400, "InvalidRequest", f"target must be an instance of {name}: {', '.join(instances)}",
                           "target")
    return Plan("switchover_cluster", spec.ref, {"switchover": request})
