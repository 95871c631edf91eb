"""HTTP: /api/operations/{id} — the Location every starter answers with (DESIGN §9's codes)."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from shared import reports
from shared.ids import is_operation_id
from shared.settings import Settings
from triggers.responses import ApiError, json_response
from triggers.starting import RUNNING

bp = df.Blueprint()


@bp.route(route="operations/{id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_operation(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """202 while running, 200 with the report when completed, 422 with the report when failed."""
    operation_id = req.route_params["id"]
    try:
        if not is_operation_id(operation_id):
            raise ApiError(400, "InvalidOperationId", "not an operation id", "id")
        status = await client.get_status(operation_id)
        if not status or status.runtime_status is None:
            raise ApiError(404, "OperationNotFound", f"no operation {operation_id}", "id")
        runtime = status.runtime_status.value
        settings = Settings.from_env()
        if runtime in RUNNING:
            return json_response(
                202,
                {"id": operation_id, "runtimeStatus": runtime, "customStatus": status.custom_status,
                 "createdTime": status.created_time},
                {"Location": req.url.split("?")[0], "Retry-After": str(settings.retry_after_seconds)},
            )
        if runtime == "Completed":
            return json_response(200, status.output)
        report = reports.load(settings.storage_connection, operation_id)
        return json_response(422, {
            "code": f"Operation{runtime}",
            "message": str(status.output) if status.output else f"the operation ended {runtime.lower()}",
            "report": report,
        })
    except ApiError as err:
        return err.response()


@bp.route(route="operations/{id}/report", methods=["GET"])
def get_report(req: func.HttpRequest) -> func.HttpResponse:
    """The stored report of a finished run: JSON, or Markdown with ?format=markdown."""
    operation_id = req.route_params["id"]
    try:
        if not is_operation_id(operation_id):
            raise ApiError(400, "InvalidOperationId", "not an operation id", "id")
        report = reports.load(Settings.from_env().storage_connection, operation_id)
        if report is None:
            raise ApiError(404, "ReportNotFound", f"no report for {operation_id} (yet)", "id")
        if (req.params.get("format") or "json").lower() == "markdown":
            return func.HttpResponse(reports.render_markdown(report), status_code=200, mimetype="text/markdown")
        return json_response(200, report)
    except ApiError as err:
        return err.response()
