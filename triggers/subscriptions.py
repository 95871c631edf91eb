"""HTTP: /api/subscriptions — Logic Apps' HTTP Webhook action.

Subscribe names the operation to run and the `callbackUrl` (`listCallbackUrl()`); the run POSTs its
report there when it ends. Unsubscribe (the workflow cancelled or timed out) cancels the run
cooperatively, so its compensation runs; a run that has already ended answers 200, nothing to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared import callbacks
from shared.ids import is_operation_id
from shared.settings import Settings
from triggers.backups import plan_restore, plan_verify
from triggers.clusters import checked_name, checked_namespace, plan_deploy, plan_teardown
from triggers.credentials import plan_rotation
from triggers.drills import plan_drill
from triggers.operations import request_cancel
from triggers.responses import ApiError, base_url, json_response, unexpected
from triggers.starting import RUNNING, Plan, operation_body, start_operation
from triggers.switchover import plan_switchover
from triggers.updates import plan_update

bp = df.Blueprint()

FIELDS = {"operation", "cluster", "namespace", "request"}


async def plan_for(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, body: dict[str, Any]
) -> Plan:
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise ApiError(400, "InvalidRequest", "unknown field", unknown[0])
    request = body.get("request", {})
    if not isinstance(request, dict):
        raise ApiError(400, "InvalidRequest", "request must be a JSON object", "request")
    operation = body.get("operation")
    if operation == "deploy":
        if "namespace" not in request:
            request = {**request, "namespace": checked_namespace(body.get("namespace"))}
        return plan_deploy(request)
    planners: dict[str, Callable[[str, str, dict[str, Any]], Plan]] = {
        "verifyBackups": plan_verify, "restore": plan_restore, "failoverDrill": plan_drill,
        "switchover": plan_switchover, "update": plan_update, "rotateCredentials": plan_rotation,
    }
    if operation not in (*planners, "teardown"):
        raise ApiError(400, "InvalidRequest",
                       "operation must be one of deploy, teardown, verifyBackups, restore, failoverDrill, switchover, "
                       "update, rotateCredentials",
                       "operation")
    namespace, name = checked_namespace(body.get("namespace")), checked_name(body.get("cluster"))
    if operation == "teardown":
        return await plan_teardown(req, client, namespace, name, request)
    return await asyncio.to_thread(planners[operation], namespace, name, request)  # the record read: off the loop


@bp.route(route="subscriptions", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def subscribe(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start the named operation with a callback: 201, `Location: /api/subscriptions/{id}`."""
    try:
        body, callback = operation_body(req, required=True)
        if callback is None:
            raise ApiError(400, "InvalidRequest", "callbackUrl is required (Logic Apps: listCallbackUrl())",
                           "callbackUrl")
        return await start_operation(req, client, await plan_for(req, client, body), callback, subscription=True)
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


@bp.route(route="subscriptions/{id}", methods=["DELETE"])
@bp.durable_client_input(client_name="client")
async def unsubscribe(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Cancel the subscribed run cooperatively (202), or 200 when it has already ended."""
    try:
        operation_id = req.route_params["id"]
        if not is_operation_id(operation_id):
            raise ApiError(400, "InvalidOperationId", "not an operation id", "id")
        return await cancel_subscription(req, client, operation_id)
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


@bp.route(route="subscriptions", methods=["DELETE"])
@bp.durable_client_input(client_name="client")
async def unsubscribe_by_callback(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The same, found by `{"callbackUrl": "@{listCallbackUrl()}"}`: what a webhook action's unsubscribe
    can send, since it cannot read the subscribe call's answer."""
    try:
        body, callback = operation_body(req, required=True)
        if callback is None or body:
            raise ApiError(400, "InvalidRequest", "send exactly {\"callbackUrl\": ...}",
                           next(iter(body), "callbackUrl"))
        operation_id = await asyncio.to_thread(callbacks.operation_for, Settings.from_env().storage_connection,
                                               callback)
        if operation_id is None:
            raise ApiError(404, "SubscriptionNotFound", "no subscription with this callbackUrl", "callbackUrl")
        return await cancel_subscription(req, client, operation_id)
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


async def cancel_subscription(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, operation_id: str
) -> func.HttpResponse:
    status = await client.get_status(operation_id)
    if not status or status.runtime_status is None:
        raise ApiError(404, "SubscriptionNotFound", f"no subscription {operation_id}", "id")
    if status.runtime_status.value not in RUNNING:
        return json_response(200, {"id": operation_id, "cancel": "not needed: the run has ended"})
    await request_cancel(client, operation_id)
    return json_response(202, {"id": operation_id, "cancel": "requested"},
                         {"Location": f"{base_url(req)}/api/operations/{operation_id}"})
