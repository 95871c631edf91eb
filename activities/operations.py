"""What every run does at its end: store its report and release its cluster's lock."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from shared import locks, reports
from shared.settings import Settings

bp = df.Blueprint()


@bp.activity_trigger(input_name="report")
def store_report(report: dict[str, Any]) -> dict[str, str]:
    return reports.store(Settings.from_env().storage_connection, report)


@bp.activity_trigger(input_name="payload")
def release_lock(payload: dict[str, Any]) -> bool:
    return locks.release(
        Settings.from_env().storage_connection, payload["namespace"], payload["name"], payload["operationId"]
    )
