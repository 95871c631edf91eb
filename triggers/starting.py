"""Starting a runbook: take the cluster's lock, start the orchestration, answer 202 (or 409)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import quote

import azure.durable_functions as df
import azure.functions as func

from orchestrations.runbook import first_line
from shared import callbacks, locks
from shared.ids import new_operation_id
from shared.settings import Settings
from triggers.responses import ApiError, base_url, json_response, read_json

RUNNING = {"Running", "Pending", "ContinuedAsNew", "Suspended"}


@dataclass(frozen=True)
class Plan:
    """A validated request for a run: which runbook, on which cluster, with what input."""

    runbook: str
    namespace: str
    name: str
    payload: dict[str, Any]


def operation_body(req: func.HttpRequest, required: bool = False) -> tuple[dict[str, Any], str | None]:
    """The request's JSON object and the `callbackUrl` taken out of it (checked, never part of the input)."""
    body = read_json(req, required=required)
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidRequest", "body must be a JSON object", "body")
    return split_callback(body)


def split_callback(body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    body = dict(body)
    url = body.pop("callbackUrl", None)
    if url is None:
        return body, None
    try:
        return body, callbacks.check_url(url, Settings.from_env().callback_hosts)
    except callbacks.CallbackError as err:
        raise ApiError(400, "InvalidRequest", f"callbackUrl {err}", "callbackUrl") from None
STARTING_GRACE_SECONDS = 10  # lock taken, instance being started


def operation_location(req: func.HttpRequest, operation_id: str) -> str:
    """Our status route, absolute; a caller that sent its key as `?code=` gets it back, so following the
    Location works the way it called (as the Functions host's own status URLs carry their key)."""
    code = req.params.get("code")
    return f"{base_url(req)}/api/operations/{operation_id}" + (f"?code={quote(code, safe='')}" if code else "")


async def _is_running(client: df.DurableOrchestrationClient, lock: locks.Lock) -> bool:
    status = await client.get_status(lock.operation_id)
    if not status:
        # taken by a starter that has not started its instance yet
        return time.time() - lock.taken_at < STARTING_GRACE_SECONDS
    return status.runtime_status is not None and status.runtime_status.value in RUNNING


async def refuse_if_busy(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, namespace: str, name: str
) -> None:
    """409 when the cluster has a run going, even one that has not made the cluster yet."""
    current = locks.holder(Settings.from_env().storage_connection, namespace, name)
    if current is not None and await _is_running(client, current):
        raise_busy(req, namespace, name, current)


class ClusterBusy(Exception):
    def __init__(self, holder: locks.Lock | None) -> None:
        super().__init__(holder.operation_id if holder else "unknown")
        self.holder = holder


async def begin_runbook(
    client: df.DurableOrchestrationClient, runbook: str, namespace: str, name: str, payload: dict[str, Any],
    operation_id: str | None = None, callback_url: str | None = None,
) -> str:
    """Take the cluster's lock and start the run; its operation id, or ClusterBusy with the running one."""
    settings = Settings.from_env()
    operation_id = operation_id or new_operation_id(runbook.split("_")[0], namespace, name)
    await take_lock(client, settings, runbook, namespace, name, operation_id)
    try:
        return await start_run(client, settings, runbook, namespace, name, payload, operation_id, callback_url)
    except ApiError:
        locks.release(settings.storage_connection, namespace, name, operation_id)
        raise


async def take_lock(
    client: df.DurableOrchestrationClient, settings: Settings, runbook: str, namespace: str, name: str,
    operation_id: str,
) -> None:
    for _ in range(3):
        current = locks.holder(settings.storage_connection, namespace, name)
        if current is not None and await _is_running(client, current):
            raise ClusterBusy(current)
        if locks.try_acquire(settings.storage_connection, namespace, name, operation_id, runbook, stale=current):
            break
    else:
        raise ClusterBusy(locks.holder(settings.storage_connection, namespace, name))


async def start_run(
    client: df.DurableOrchestrationClient, settings: Settings, runbook: str, namespace: str, name: str,
    payload: dict[str, Any], operation_id: str, callback_url: str | None = None,
) -> str:
    """Start the orchestration; a callback URL is stored beside it, only a flag goes into its input."""
    if callback_url:
        callbacks.register(settings.storage_connection, operation_id, callback_url)
    body = {
        **payload, "operationId": operation_id, "namespace": namespace, "name": name,
        "options": settings.run_options(), "requestedAt": datetime.now(UTC).isoformat(),
        "callback": bool(callback_url),
    }
    try:
        await client.start_new(runbook, operation_id, body)
    except Exception as err:
        raise ApiError(503, "StartFailed", f"the durable runtime did not start {runbook}: {first_line(err)}") from None
    return operation_id


async def start_planned(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, plan: Plan, callback_url: str | None = None,
) -> str:
    """Start a planned run for an HTTP caller: its operation id, or the 409 with the running one's Location."""
    try:
        return await begin_runbook(client, plan.runbook, plan.namespace, plan.name, plan.payload,
                                   callback_url=callback_url)
    except ClusterBusy as busy:
        raise_busy(req, plan.namespace, plan.name, busy.holder)


def accepted(req: func.HttpRequest, plan: Plan, operation_id: str, status: int = 202,
             location: str | None = None) -> func.HttpResponse:
    """202 (or a subscription's 201) with the operation's Location, as Logic Apps' async pattern expects."""
    status_uri = operation_location(req, operation_id)
    return json_response(
        status,
        {"id": operation_id, "runbook": plan.runbook, "cluster": {"namespace": plan.namespace, "name": plan.name},
         "statusQueryGetUri": status_uri},
        {"Location": location or status_uri, "Retry-After": str(Settings.from_env().retry_after_seconds)},
    )


async def start_runbook(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, plan: Plan, callback_url: str | None = None,
) -> func.HttpResponse:
    """Start a run for an HTTP caller: 202 with our Location, or 409 with the running one's."""
    return accepted(req, plan, await start_planned(req, client, plan, callback_url))


def raise_busy(req: func.HttpRequest, namespace: str, name: str, current: locks.Lock | None) -> NoReturn:
    running = current.operation_id if current else "unknown"
    location = operation_location(req, running)
    raise ApiError(
        409, "ClusterBusy",
        f"cluster {namespace}/{name} has an operation running ({current.runbook if current else '?'} {running})",
        extra={"operationId": running, "statusQueryGetUri": location}, headers={"Location": location},
    )
