"""HTTP: /api/operations/{id} — the Location every starter answers with (DESIGN §9's codes)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from pydantic import Field

from shared import cancels, reports
from shared.ids import is_operation_id
from shared.model import Model
from shared.report_html import PAGE_HEADERS, render_html
from shared.settings import Settings
from triggers.responses import ApiError, json_response, request_model, unexpected
from triggers.starting import RUNNING, operation_location

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
                {"Location": operation_location(req, operation_id), "Retry-After": str(settings.retry_after_seconds)},
            )
        if runtime == "Completed":
            return json_response(200, status.output)
        report = await asyncio.to_thread(reports.load, settings.storage_connection, operation_id)
        canceled = bool(report) and report.get("status") == "canceled"
        return json_response(422, {
            "code": "OperationCanceled" if canceled else f"Operation{runtime}",
            "message": str(status.output) if status.output else f"the operation ended {runtime.lower()}",
            "report": report,
        })
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


@bp.route(route="operations/{id}/report", methods=["GET"])
def get_report(req: func.HttpRequest) -> func.HttpResponse:
    """The stored report of a finished run: JSON, Markdown with ?format=markdown, a page with ?format=html."""
    operation_id = req.route_params["id"]
    try:
        if not is_operation_id(operation_id):
            raise ApiError(400, "InvalidOperationId", "not an operation id", "id")
        report = reports.load(Settings.from_env().storage_connection, operation_id)
        if report is None:
            raise ApiError(404, "ReportNotFound", f"no report for {operation_id} (yet)", "id")
        kind = (req.params.get("format") or "json").lower()
        if kind == "markdown":
            return func.HttpResponse(reports.render_markdown(report), status_code=200, mimetype="text/markdown")
        if kind == "html":  # opened in a browser with ?code=, which its links carry on
            return func.HttpResponse(render_html(report, req.params.get("code")), status_code=200,
                                     mimetype="text/html", headers=PAGE_HEADERS)
        if kind != "json":
            raise ApiError(400, "InvalidFormat", "format must be json, markdown or html", "format")
        return json_response(200, report)
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


class Decision(Model):
    by: str | None = Field(default=None, max_length=200)
    comment: str | None = Field(default=None, max_length=2000)


async def running_operation(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> Any:
    """The running instance named in the route, or the 400 / 404 / 409 that says why not."""
    operation_id = req.route_params["id"]
    if not is_operation_id(operation_id):
        raise ApiError(400, "InvalidOperationId", "not an operation id", "id")
    status = await client.get_status(operation_id)
    if not status or status.runtime_status is None:
        raise ApiError(404, "OperationNotFound", f"no operation {operation_id}", "id")
    if status.runtime_status.value not in RUNNING:
        raise ApiError(409, "OperationNotRunning",
                       f"operation {operation_id} has ended ({status.runtime_status.value.lower()})", "id")
    return status


async def decide(req: func.HttpRequest, client: df.DurableOrchestrationClient, event: str) -> func.HttpResponse:
    """Approve or reject the action a run waits for; refused unless it waits for one now, so an early
    or stray approval can never be kept for an action nobody has seen yet."""
    try:
        decision = request_model(req, Decision)
        status = await running_operation(req, client)
        pending = (status.custom_status or {}).get("pendingApproval") if isinstance(status.custom_status, dict) \
            else None
        if not pending:
            raise ApiError(409, "NoPendingApproval", f"operation {status.instance_id} is not waiting for an approval")
        if datetime.fromisoformat(pending["deadline"]) < datetime.now(UTC):
            raise ApiError(409, "ApprovalExpired", f"the approval of {pending.get('action')!r} closed at "
                           f"{pending['deadline']}: nothing was done")
        await raise_while_running(client, status.instance_id, event, decision.dump())
        return json_response(202, {"id": status.instance_id, "decision": event, "action": pending.get("action")},
                             {"Location": operation_location(req, status.instance_id)})
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


@bp.route(route="operations/{id}/approve", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def approve_operation(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await decide(req, client, "approve")


@bp.route(route="operations/{id}/reject", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def reject_operation(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await decide(req, client, "reject")


CHILD_SUFFIXES = ("-restore", "-verify")  # sub-runs a runbook starts under its own id


async def raise_while_running(client: df.DurableOrchestrationClient, operation_id: str, event: str,
                              data: Any) -> None:
    """Raise an event; a run that ended meanwhile is a 409, not a failure of ours."""
    try:
        await client.raise_event(operation_id, event, data)
    except Exception:
        status = await client.get_status(operation_id)
        if not status or status.runtime_status is None or status.runtime_status.value not in RUNNING:
            raise ApiError(409, "OperationNotRunning", f"operation {operation_id} has ended", "id") from None
        raise


async def request_cancel(client: df.DurableOrchestrationClient, operation_id: str) -> None:
    """Raise `cancel` on the run and its running sub-runs: every wait races it, so their compensation runs."""
    await raise_while_running(client, operation_id, "cancel", {"requestedAt": datetime.now(UTC).isoformat()})
    await asyncio.to_thread(cancels.record, Settings.from_env().storage_connection, operation_id)
    for suffix in CHILD_SUFFIXES:
        child = await client.get_status(operation_id + suffix)
        if child and child.runtime_status is not None and child.runtime_status.value in RUNNING:
            with contextlib.suppress(ApiError):  # a child that ended meanwhile needs no cancel
                await raise_while_running(client, operation_id + suffix, "cancel",
                                          {"requestedAt": datetime.now(UTC).isoformat()})


@bp.route(route="operations/{id}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def cancel_operation(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Cooperative cancel: the run stops at its next wait and removes what it made; 202 with its Location."""
    try:
        status = await running_operation(req, client)
        await request_cancel(client, status.instance_id)
        location = operation_location(req, status.instance_id)
        return json_response(202, {"id": status.instance_id, "cancel": "requested", "statusQueryGetUri": location},
                             {"Location": location, "Retry-After": str(Settings.from_env().retry_after_seconds)})
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)
