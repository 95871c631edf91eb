"""GET /api/dashboard: the fleet page, guarded by the function key like every route (a browser opens it
with ?code=, which its links carry on)."""

from __future__ import annotations

import asyncio

import azure.durable_functions as df
import azure.functions as func

from shared import locks
from shared.fleet import FleetRow, Running, fleet
from shared.fleet_html import render_fleet
from shared.offload import off_loop
from shared.platforms import platform_for
from shared.report_html import PAGE_HEADERS
from shared.settings import Settings
from triggers.responses import unexpected

bp = df.Blueprint()


@bp.route(route="dashboard", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def dashboard(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Every cluster's row; a run holding a cluster is shown with the steps it has done."""
    try:
        settings = Settings.from_env()
        rows = await off_loop(fleet, platform_for(settings), settings.storage_connection,
                              settings.max_recovery_point_age_seconds)
        rows = list(await asyncio.gather(*(with_running(client, settings.storage_connection, row) for row in rows)))
        return func.HttpResponse(render_fleet(rows, req.params.get("code")), status_code=200, mimetype="text/html",
                                 headers=PAGE_HEADERS)
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


async def with_running(client: df.DurableOrchestrationClient, connection: str, row: FleetRow) -> FleetRow:
    holder = await off_loop(locks.holder, connection, row.namespace, row.name)
    if holder is None:
        return row
    status = await client.get_status(holder.operation_id)
    custom = (status.custom_status if status else None) or {}
    return row.model_copy(update={"running": Running(
        operation_id=holder.operation_id, runbook=holder.runbook, step=custom.get("step"),
        steps_done=list(custom.get("stepsDone") or []))})
