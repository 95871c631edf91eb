"""pgha's own schedules (CNPG's 6-field cron): which are due since the periodic timer last looked."""

from __future__ import annotations

import json
from datetime import datetime

from azure.core.exceptions import ResourceNotFoundError
from croniter import croniter

from shared import objectstore

CONTAINER = "schedules"


def fire_times(schedule: str, since: datetime, now: datetime) -> int:
    """How many times `schedule` fired in (since, now] (capped: a long outage runs a job once, not N times)."""
    count, it = 0, croniter(schedule, since, second_at_beginning=True)
    while count < 2 and it.get_next(datetime) <= now:
        count += 1
    return count


def last_checked(connection: str, namespace: str, name: str) -> datetime | None:
    blob = objectstore.container(connection, CONTAINER).get_blob_client(f"{namespace}/{name}.json")
    try:
        return datetime.fromisoformat(json.loads(blob.download_blob().readall())["lastCheckedAt"])
    except ResourceNotFoundError:
        return None


def mark_checked(connection: str, namespace: str, name: str, now: datetime) -> None:
    objectstore.put(connection, CONTAINER, f"{namespace}/{name}.json",
                    json.dumps({"lastCheckedAt": now.isoformat()}), overwrite=True)
