"""What every run does at its end: post its report to a callback, store it, release its cluster's lock."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities import typed
from shared import callbacks, locks, reports
from shared.outcome import done, skipped
from shared.payloads import ReleaseLock
from shared.settings import Settings

bp = df.Blueprint()


@bp.activity_trigger(input_name="report")
def store_report(report: dict[str, Any]) -> dict[str, str]:
    return reports.store(Settings.from_env().storage_connection, report)


@bp.activity_trigger(input_name="lock")
@typed
def release_lock(lock: ReleaseLock) -> bool:
    return locks.release(Settings.from_env().storage_connection, lock.namespace, lock.name, lock.operation_id)


@bp.activity_trigger(input_name="report")
def post_report(report: dict[str, Any]) -> dict[str, Any]:
    """POST the run's report to the callback its caller registered (the URL is read here, never passed)."""
    connection = Settings.from_env().storage_connection
    url = callbacks.lookup(connection, report["operationId"])
    if url is None:
        return skipped("no callback registered (or already delivered)").dump()
    delivered = callbacks.post(url, report)
    callbacks.forget(connection, report["operationId"], url)
    return done(delivered).dump()


@bp.activity_trigger(input_name="operation")
def report_status(operation: str) -> str | None:
    """A finished run's status as its stored report says (succeeded, failed, canceled), or None."""
    report = reports.load(Settings.from_env().storage_connection, operation)
    return report.get("status") if report else None
