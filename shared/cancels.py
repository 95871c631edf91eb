"""Cancel requests, kept in blob container `cancels/`: the run is asked cooperatively (a `cancel` event);
the periodic timer terminates a run still going after PGHA_CANCEL_TIMEOUT_SECONDS and compensates."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared import objectstore

CONTAINER = "cancels"


def record(connection: str, operation_id: str) -> None:
    """The first request's time is kept: asking again does not move the deadline."""
    with contextlib.suppress(ResourceExistsError):  # asked before: that request's time stands
        objectstore.put(connection, CONTAINER, operation_id,
                        json.dumps({"operationId": operation_id, "requestedAt": time.time()}), overwrite=False)


def update(connection: str, operation_id: str, fields: dict[str, Any]) -> None:
    """Remember what the fallback did (the runs it terminated, the compensations it owes)."""
    client = objectstore.container(connection, CONTAINER, create=True)
    current = json.loads(client.download_blob(operation_id).readall())
    client.upload_blob(operation_id, json.dumps({**current, **fields}), overwrite=True)


def pending(connection: str) -> Iterator[tuple[str, dict[str, Any]]]:
    client = objectstore.container(connection, CONTAINER)
    if not objectstore.container_exists(client):
        return
    try:
        names = [blob.name for blob in client.list_blobs()]
    except ResourceNotFoundError:  # the container went between the two calls: nothing is pending
        return
    for name in names:
        try:
            found = json.loads(client.download_blob(name).readall())
            float(found["requestedAt"])
            yield name, found
        except (ResourceNotFoundError, ValueError, KeyError):
            continue


def forget(connection: str, operation_id: str) -> None:
    with contextlib.suppress(ResourceNotFoundError):
        objectstore.container(connection, CONTAINER).delete_blob(operation_id)
