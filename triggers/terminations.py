"""The fallback of a cooperative cancel: a run still going PGHA_CANCEL_TIMEOUT_SECONDS after its cancel
request is terminated by the periodic timer, a report says so, and compensate_run cleans up."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from shared import cancels, locks, reports
from shared.restore import restore_name
from shared.settings import Settings
from triggers.starting import RUNNING, start_run

log = logging.getLogger("pgha.cancels")
CHILD = "-restore"


def restore_cluster_of(operation_id: str, run_input: dict[str, Any]) -> str:
    """The restore cluster a restore_cluster run makes: named in its request, or derived from its id."""
    return (run_input.get("restore") or {}).get("name") or restore_name(run_input["name"], operation_id)


async def terminate_overdue(client: df.DurableOrchestrationClient, now: float | None = None) -> list[str]:
    """Terminate every cancelled run past its deadline and start its compensation; the ids terminated."""
    settings = Settings.from_env()
    now = now if now is not None else time.time()
    terminated = []
    for operation_id, requested_at in list(cancels.pending(settings.storage_connection)):
        status = await client.get_status(operation_id, show_input=True)
        if not status or status.runtime_status is None or status.runtime_status.value not in RUNNING:
            cancels.forget(settings.storage_connection, operation_id)
            continue
        if now - requested_at < settings.cancel_timeout_seconds:
            continue
        for target in (operation_id, operation_id + CHILD):
            await terminate_and_compensate(client, settings, target, operation_id)
        cancels.forget(settings.storage_connection, operation_id)
        terminated.append(operation_id)
    return terminated


async def terminate_and_compensate(
    client: df.DurableOrchestrationClient, settings: Settings, operation_id: str, lock_id: str
) -> None:
    status = await client.get_status(operation_id, show_input=True)
    if not status or status.runtime_status is None or status.runtime_status.value not in RUNNING:
        return
    run_input: dict[str, Any] = status.input_ if isinstance(status.input_, dict) else {}
    runbook = status.name or "unknown"
    reason = f"cancel requested; the run did not stop within {settings.cancel_timeout_seconds}s"
    await client.terminate(operation_id, reason)
    log.warning("terminated %s (%s): %s", operation_id, runbook, reason)
    namespace, name = run_input.get("namespace", settings.default_namespace), run_input.get("name", "")
    compensation = f"{operation_id}-compensate"
    now = datetime.now(UTC).isoformat()
    reports.store(settings.storage_connection, {
        "operationId": operation_id, "runbook": runbook, "cluster": {"namespace": namespace, "name": name},
        "status": "canceled", "startedAt": str(status.created_time), "endedAt": now, "durationSeconds": None,
        "steps": [], "error": f"terminated: {reason}; compensation {compensation}",
    })
    details: dict[str, Any] = {"operationId": operation_id, "runbook": runbook,
                               "timeoutSeconds": settings.cancel_timeout_seconds}
    if runbook == "restore_cluster" and name:
        details["restoreCluster"] = restore_cluster_of(operation_id, run_input)
    # the compensation runs under the terminated run's lock, and releases it when it ends
    holder = locks.holder(settings.storage_connection, namespace, name) if name else None
    owns = holder is not None and holder.operation_id == lock_id and operation_id == lock_id
    await start_run(client, settings, "compensate_run", namespace, name,
                    {"terminated": details, "ownsLock": owns, "lockId": lock_id}, compensation)
