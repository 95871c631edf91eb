"""The fallback of a cooperative cancel: a run still going PGHA_CANCEL_TIMEOUT_SECONDS after its cancel
request is terminated by the periodic timer, a report says so, and compensate_run cleans up."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from shared import cancels, locks, reports
from shared.offload import off_loop
from shared.reports import Report
from shared.restore import restore_name
from shared.runs import Terminated
from shared.settings import Settings
from shared.spec import ClusterRef
from triggers.starting import RUNNING, Plan, start_run

log = logging.getLogger("pgha.cancels")
CHILDREN = ("-restore", "-verify")  # the sub-runs a runbook starts under its own id


def restore_cluster_of(operation_id: str, run_input: dict[str, Any]) -> str:
    """The restore cluster a restore_cluster run makes: named in its request, or derived from its id."""
    return (run_input.get("restore") or {}).get("name") or restore_name(run_input["name"], operation_id)


async def terminate_overdue(client: df.DurableOrchestrationClient, now: float | None = None) -> list[str]:
    """Terminate every cancelled run past its deadline, and start the compensations it owes; the ids
    terminated now. A compensation that could not start is tried again at the next tick."""
    settings = Settings.from_env()
    now = now if now is not None else time.time()
    terminated = []
    for operation_id, record in await off_loop(lambda: list(cancels.pending(settings.storage_connection))):
        if "compensations" in record:  # terminated at an earlier tick: what it still owes
            if await start_compensations(client, settings, record["compensations"]):
                await off_loop(cancels.forget, settings.storage_connection, operation_id)
            continue
        status = await client.get_status(operation_id)
        if not status or status.runtime_status is None or status.runtime_status.value not in RUNNING:
            await off_loop(cancels.forget, settings.storage_connection, operation_id)  # it stopped by itself
            continue
        if now - float(record["requestedAt"]) < settings.cancel_timeout_seconds:
            continue
        owed = []
        for target in (*(operation_id + suffix for suffix in CHILDREN), operation_id):  # children first
            compensation = await terminate(client, settings, target, operation_id)
            if compensation is not None:
                owed.append(compensation)
        await off_loop(cancels.update, settings.storage_connection, operation_id, {"compensations": owed})
        if await start_compensations(client, settings, owed):
            await off_loop(cancels.forget, settings.storage_connection, operation_id)
        terminated.append(operation_id)
    return terminated


async def terminate(
    client: df.DurableOrchestrationClient, settings: Settings, operation_id: str, lock_id: str
) -> dict[str, Any] | None:
    """Terminate one run, store its report; the compensation it owes (None when it was not running)."""
    status = await client.get_status(operation_id, show_input=True)
    if not status or status.runtime_status is None or status.runtime_status.value not in RUNNING:
        return None
    run_input: dict[str, Any] = status.input_ if isinstance(status.input_, dict) else {}
    runbook = status.name or "unknown"
    reason = f"cancel requested; the run did not stop within {settings.cancel_timeout_seconds}s"
    await client.terminate(operation_id, reason)
    log.warning("terminated %s (%s): %s", operation_id, runbook, reason)
    namespace, name = run_input.get("namespace", settings.default_namespace), run_input.get("name", "")
    compensation = f"{operation_id}-compensate"
    report = Report(operation_id=operation_id, runbook=runbook, cluster=ClusterRef(namespace=namespace, name=name),
                    started_at=started_at(status.created_time)).close(
        "canceled", f"terminated: {reason}; compensation {compensation}", datetime.now(UTC)).dump()
    await off_loop(reports.store, settings.storage_connection, report)
    terminated = Terminated(
        operation_id=operation_id, runbook=runbook, timeout_seconds=settings.cancel_timeout_seconds, report=report,
        restore_cluster=restore_cluster_of(operation_id, run_input) if runbook == "restore_cluster" and name else None)
    # the compensation of the run holding the cluster's lock runs under it and releases it at its end
    holder = await off_loop(locks.holder, settings.storage_connection, namespace, name) if name else None
    owns = holder is not None and holder.operation_id == lock_id and operation_id == lock_id
    return {"id": compensation, "namespace": namespace, "name": name,
            "payload": {"terminated": terminated.dump(), "ownsLock": owns, "lockId": lock_id}}


def started_at(created: object) -> str:
    """The durable client's creation time, as the report's ISO time (with its zone: UTC when it has none);
    unknown, the termination's own time (the report's duration then reads 0)."""
    try:
        at = created if isinstance(created, datetime) else datetime.fromisoformat(str(created))
    except ValueError:
        at = datetime.now(UTC)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


async def start_compensations(client: df.DurableOrchestrationClient, settings: Settings,
                              owed: list[dict[str, Any]]) -> bool:
    """Start each compensation not started yet; False when one could not start (kept for the next tick)."""
    started_all = True
    for compensation in owed:
        if await client.get_status(compensation["id"]):
            continue
        try:
            # kept in the cancel record between ticks, in the input's own (camelCase) words
            plan = Plan("compensate_run", ClusterRef(namespace=compensation["namespace"], name=compensation["name"]),
                        compensation["payload"])
            await start_run(client, settings, plan, compensation["id"])
        except Exception:
            log.exception("compensation %s did not start; the next tick tries again", compensation["id"])
            started_all = False
    return started_all
