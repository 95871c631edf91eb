"""Starting a runbook: read the plan, refuse a busy cluster (409), take its lock, start the run, answer 202."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import quote

import azure.durable_functions as df
import azure.functions as func

from orchestrations.runbook import first_line
from shared import callbacks, locks
from shared.ids import new_operation_id
from shared.offload import off_loop
from shared.runs import INPUTS
from shared.settings import Settings
from shared.spec import ClusterRef
from triggers.responses import ApiError, base_url, json_response, read_json, unavailable

RUNNING = {"Running", "Pending", "ContinuedAsNew", "Suspended"}
STARTING_GRACE_SECONDS = 10  # lock taken, instance being started


@dataclass(frozen=True)
class Plan:
    """A validated request for a run: which runbook, on which cluster, with what (typed) input fields."""

    runbook: str
    cluster: ClusterRef
    fields: dict[str, Any] = field(default_factory=dict)


class ClusterBusy(Exception):
    def __init__(self, holder: locks.Lock | None) -> None:
        super().__init__(holder.operation_id if holder else "unknown")
        self.holder = holder


async def start_operation(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, plan: Plan, callback_url: str | None = None,
    subscription: bool = False,
) -> func.HttpResponse:
    """An HTTP caller's run: 409 with the running one's Location when the cluster is busy, else the lock taken,
    the run started and 202 with our Location (a subscription: 201, Location its /api/subscriptions/{id})."""
    settings = Settings.from_env()
    try:
        operation_id = await begin(client, settings, plan, callback_url)
    except ClusterBusy as busy:
        raise_busy(req, plan.cluster, busy.holder)
    status_uri = operation_location(req, operation_id)
    return json_response(
        201 if subscription else 202,
        {"id": operation_id, "runbook": plan.runbook, "cluster": plan.cluster.dump(), "statusQueryGetUri": status_uri},
        {"Location": f"{base_url(req)}/api/subscriptions/{operation_id}" if subscription else status_uri,
         "Retry-After": str(settings.retry_after_seconds)},
    )


async def begin(client: df.DurableOrchestrationClient, settings: Settings, plan: Plan,
                callback_url: str | None = None) -> str:
    """Take the cluster's lock and start the run (ClusterBusy when another run holds it); its operation id.
    Every starter but the alert webhook's begins this way: HTTP callers, the periodic timer."""
    cluster = plan.cluster
    operation_id = new_operation_id(plan.runbook.split("_")[0], cluster.namespace, cluster.name)
    try:
        await lock_cluster(client, settings, plan, operation_id)
    except ClusterBusy:
        raise
    except Exception as err:
        raise unavailable("taking the cluster's lock", err) from None
    try:
        return await start_run(client, settings, plan, operation_id, callback_url)
    except Exception as err:
        await off_loop(locks.release, settings.storage_connection, cluster.namespace, cluster.name,
                                operation_id)
        raise err if isinstance(err, ApiError) else unavailable(f"starting {plan.runbook}", err) from None


async def lock_cluster(client: df.DurableOrchestrationClient, settings: Settings, plan: Plan,
                       operation_id: str) -> None:
    """Take the cluster's lock for `operation_id`, or ClusterBusy with the run holding it. Storage is called off
    the event loop: every HTTP function of the host shares that loop, and a blocking call would stall them all."""
    namespace, name = plan.cluster.namespace, plan.cluster.name
    connection = settings.storage_connection
    for _ in range(3):
        current = await off_loop(locks.holder, connection, namespace, name)
        if current is not None and await _is_running(client, current):
            raise ClusterBusy(current)
        if await off_loop(locks.try_acquire, connection, namespace, name, operation_id, plan.runbook,
                                   current):
            return
    raise ClusterBusy(await off_loop(locks.holder, connection, namespace, name))


async def start_run(client: df.DurableOrchestrationClient, settings: Settings, plan: Plan, operation_id: str,
                    callback_url: str | None = None) -> str:
    """Start the orchestration with its typed input; a callback URL is stored beside it, only a flag goes in."""
    run_input = INPUTS[plan.runbook](
        operation_id=operation_id, namespace=plan.cluster.namespace, name=plan.cluster.name,
        options=settings.run_options(), requested_at=datetime.now(UTC).isoformat(), callback=bool(callback_url),
        **plan.fields,
    )
    if callback_url:
        await off_loop(callbacks.register, settings.storage_connection, operation_id, callback_url)
    try:
        await client.start_new(plan.runbook, operation_id, run_input.dump())
    except Exception as err:
        raise ApiError(503, "StartFailed",
                       f"the durable runtime did not start {plan.runbook}: {first_line(err)}") from None
    return operation_id


async def refuse_if_busy(req: func.HttpRequest, client: df.DurableOrchestrationClient, cluster: ClusterRef) -> None:
    """409 when the cluster has a run going, even one that has not made the cluster yet."""
    current = await off_loop(locks.holder, Settings.from_env().storage_connection, cluster.namespace,
                                      cluster.name)
    if current is not None and await _is_running(client, current):
        raise_busy(req, cluster, current)


async def _is_running(client: df.DurableOrchestrationClient, lock: locks.Lock) -> bool:
    status = await client.get_status(lock.operation_id)
    if not status:
        # taken by a starter that has not started its instance yet
        return time.time() - lock.taken_at < STARTING_GRACE_SECONDS
    return status.runtime_status is not None and status.runtime_status.value in RUNNING


def raise_busy(req: func.HttpRequest, cluster: ClusterRef, current: locks.Lock | None) -> NoReturn:
    running = current.operation_id if current else "unknown"
    location = operation_location(req, running)
    raise ApiError(
        409, "ClusterBusy",
        f"cluster {cluster.namespace}/{cluster.name} has an operation running "
        f"({current.runbook if current else '?'} {running})",
        extra={"operationId": running, "statusQueryGetUri": location}, headers={"Location": location},
    )


def operation_location(req: func.HttpRequest, operation_id: str) -> str:
    """Our status route, absolute; a caller that sent its key as `?code=` gets it back, so following the
    Location works the way it called (as the Functions host's own status URLs carry their key)."""
    code = req.params.get("code")
    return f"{base_url(req)}/api/operations/{operation_id}" + (f"?code={quote(code, safe='')}" if code else "")


def operation_body(req: func.HttpRequest, required: bool = False) -> tuple[dict[str, Any], str | None]:
    """The request's JSON object and the `callbackUrl` taken out of it (checked, never part of the input)."""
    body = read_json(req, required=required)
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidRequest", "body must be a JSON object", "body")
    body = dict(body)
    url = body.pop("callbackUrl", None)
    if url is None:
        return body, None
    try:
        return body, callbacks.check_url(url, Settings.from_env().callback_hosts)
    except callbacks.CallbackError as err:
        raise ApiError(400, "InvalidRequest", f"callbackUrl {err}", "callbackUrl") from None
