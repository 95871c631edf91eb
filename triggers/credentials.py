"""HTTP: POST /api/clusters/{name}/credentials/rotate — a new password for the application owner, on every
cluster of the namespace that uses the same app secret."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.requests import RotateRequest
from triggers.clusters import start_on_cluster, stored_spec
from triggers.responses import parse_request
from triggers.starting import Plan

bp = df.Blueprint()


@bp.route(route="clusters/{name}/credentials/rotate", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_rotation(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start rotate_credentials; the report names every cluster the secret's new password was set on."""
    return await start_on_cluster(req, client, plan_rotation)


def plan_rotation(namespace: str, name: str, body: dict[str, Any]) -> Plan:
    spec = stored_spec(namespace, name)
    parse_request(RotateRequest, body)
    return Plan("rotate_credentials", spec.ref, {})
