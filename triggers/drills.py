"""HTTP: /api/clusters/{name}/drills/failover — rehearse a failover and measure it."""

from __future__ import annotations

from typing import Literal

import azure.durable_functions as df
import azure.functions as func

from shared.spec import Model
from triggers.clusters import existing_spec
from triggers.responses import ApiError, request_model
from triggers.starting import start_runbook

bp = df.Blueprint()


class DrillRequest(Model):
    mode: Literal["graceful", "crash"] = "graceful"
    dry_run: bool = False


@bp.route(route="clusters/{name}/drills/failover", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_failover_drill(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start failover_drill (`graceful` like a pod deleted with a grace period, `crash` like a lost node)."""
    try:
        spec = existing_spec(req)
        drill = request_model(req, DrillRequest)
        return await start_runbook(req, client, "failover_drill", spec.namespace, spec.name, {"drill": drill.dump()})
    except ApiError as err:
        return err.response()
