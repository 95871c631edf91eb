"""One winner: a lock per cluster in blob container `locks/`, a claim per alert in `alerts/`.

A starter takes the cluster's lock before it starts a run (create-if-absent, so two starters cannot both
win); the run releases it at its end. A lock whose run is no longer going is stale and is taken over,
guarded by the blob's ETag so that only one starter can take it over. The first delivery of an alert
claims it the same create-if-absent way, so copies of it start no second run. A claim is deleted a retention
(PGHA_ALERT_CLAIM_RETENTION_HOURS) after its alert resolved, so `alerts/` does not grow for ever; the claim of
an alert that never resolves stays, since a repeat of it (Alertmanager's repeat_interval) must not start a
second run under the same id, which the Functions runtime would allow once the first has ended.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient

from shared import objectstore

CONTAINER = "locks"
CLAIMS = "alerts"
RESOLVED = "resolvedat"  # the claim's metadata: when its alert resolved


@dataclass(frozen=True)
class Lock:
    operation_id: str
    runbook: str
    etag: str
    taken_at: float = 0.0


def _blob(connection: str, namespace: str, name: str) -> BlobClient:
    return objectstore.container(connection, CONTAINER).get_blob_client(f"{namespace}/{name}.json")


def holder(connection: str, namespace: str, name: str) -> Lock | None:
    blob = _blob(connection, namespace, name)
    try:
        download = blob.download_blob()
        record = json.loads(download.readall())
        return Lock(record["operationId"], record["runbook"], download.properties.etag, record.get("takenAt", 0.0))
    except ResourceNotFoundError:
        return None


def try_acquire(
    connection: str, namespace: str, name: str, operation_id: str, runbook: str, stale: Lock | None = None
) -> bool:
    """Take the lock for `operation_id`; replace `stale` only if it is still the record stored."""
    body = json.dumps({"operationId": operation_id, "runbook": runbook, "takenAt": time.time()})
    try:
        if stale is None:
            objectstore.put(connection, CONTAINER, f"{namespace}/{name}.json", body, overwrite=False)
        else:
            _blob(connection, namespace, name).upload_blob(body, overwrite=True, etag=stale.etag,
                                                           match_condition=MatchConditions.IfNotModified)
        return True
    except (ResourceExistsError, ResourceModifiedError):
        return False


def release(connection: str, namespace: str, name: str, operation_id: str) -> bool:
    """Drop the lock if `operation_id` holds it; idempotent."""
    current = holder(connection, namespace, name)
    if current is None or current.operation_id != operation_id:
        return False
    try:
        _blob(connection, namespace, name).delete_blob(etag=current.etag, match_condition=MatchConditions.IfNotModified)
        return True
    except (ResourceNotFoundError, ResourceModifiedError):
        return False


def claim(connection: str, key: str) -> bool:
    """True for the first delivery of this alert and condition (create-if-absent: one winner)."""
    try:
        objectstore.put(connection, CLAIMS, f"{key}.json", json.dumps({"operationId": key, "claimedAt": time.time()}),
                        overwrite=False)
        return True
    except ResourceExistsError:
        return False


def claimed_at(connection: str, key: str) -> float:
    try:
        blob = objectstore.container(connection, CLAIMS).get_blob_client(f"{key}.json")
        return float(json.loads(blob.download_blob().readall())["claimedAt"])
    except (ResourceNotFoundError, ValueError, KeyError):
        return 0.0


def mark_resolved(connection: str, key: str) -> bool:
    """Note on an alert's claim that the alert resolved: only late copies of its firing can come after this,
    and the claim's retention counts from now. False when there is no claim (it never fired here)."""
    try:
        objectstore.container(connection, CLAIMS).get_blob_client(f"{key}.json").set_blob_metadata(
            {RESOLVED: repr(time.time())})
        return True
    except ResourceNotFoundError:
        return False


def resolved_before(connection: str, cutoff: float) -> list[tuple[str, str]]:
    """(key, ETag) of the claims whose alert resolved before `cutoff` (seconds since the epoch), oldest first."""
    found = []
    try:
        for blob in objectstore.container(connection, CLAIMS).list_blobs(include=["metadata"]):
            try:
                resolved_at = float((blob.metadata or {}).get(RESOLVED, "nan"))
            except ValueError:  # not pgha's: left alone
                continue
            if resolved_at < cutoff:
                found.append((resolved_at, blob.name.removesuffix(".json"), blob.etag))
    except ResourceNotFoundError:  # no alert has come yet
        return []
    return [(key, etag) for _, key, etag in sorted(found)]


def forget_claim(connection: str, key: str, etag: str) -> bool:
    """Delete a claim if it is still the one listed (a delivery may have given it back and claimed it again)."""
    try:
        objectstore.container(connection, CLAIMS).delete_blob(f"{key}.json", etag=etag,
                                                              match_condition=MatchConditions.IfNotModified)
        return True
    except (ResourceNotFoundError, ResourceModifiedError):
        return False


def unclaim(connection: str, key: str) -> None:
    """Give a claim back (its run did not start), so the sender's retry starts it."""
    with contextlib.suppress(ResourceNotFoundError):
        objectstore.container(connection, CLAIMS).delete_blob(f"{key}.json")
