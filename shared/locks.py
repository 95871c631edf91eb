"""One winner: a lock per cluster in blob container `locks/`, a claim per alert in `alerts/`.

A starter takes the cluster's lock before it starts a run (create-if-absent, so two starters cannot both
win); the run releases it at its end. A lock whose run is no longer going is stale and is taken over,
guarded by the blob's ETag so that only one starter can take it over. The first delivery of an alert
claims it the same create-if-absent way, so copies of it start no second run. A claim is deleted a retention
(PGHA_ALERT_CLAIM_RETENTION_HOURS) after its alert resolved, so `alerts/` does not grow for ever (a marker per
resolution, `alerts/resolved/<UTC hour>/<key>`, is what the hourly sweep lists); the claim of
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
from azure.storage.blob import BlobClient, ContainerClient

from shared import objectstore

CONTAINER = "locks"
CLAIMS = "alerts"
RESOLVED = "resolvedat"  # the claim's metadata: when its alert resolved
MARKERS = "resolved/"  # resolved/<UTC hour>/<key>: the claims whose alert resolved in that hour


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


def mark_resolved(connection: str, key: str, now: float | None = None) -> bool:
    """Note that an alert resolved: only late copies of its firing can come after this, and its claim's retention
    counts from now. The claim's metadata says when; a marker under `resolved/<UTC hour>/` lets the sweep find
    it without listing every claim. False when there is no claim (it never fired here)."""
    moment = time.time() if now is None else now
    container = objectstore.container(connection, CLAIMS)
    try:
        container.get_blob_client(f"{key}.json").set_blob_metadata({RESOLVED: repr(moment)})
    except ResourceNotFoundError:
        return False
    container.upload_blob(f"{MARKERS}{hour_of(moment)}/{key}", b"", overwrite=True)
    return True


def hour_of(moment: float) -> str:
    return time.strftime("%Y%m%d%H", time.gmtime(moment))


@dataclass(frozen=True)
class ResolvedClaim:
    """A claim whose alert resolved before the sweep's cutoff, as its marker names it. `etag` is None when the
    claim is gone or its alert resolved again later (a newer marker stands for it): only the marker goes."""

    key: str
    marker: str
    etag: str | None


def resolved_before(connection: str, cutoff: float) -> list[ResolvedClaim]:
    """The claims whose alert resolved before `cutoff` (seconds since the epoch), hour by hour, oldest first. Only
    the markers of the hours wholly before the cutoff are listed, then each one's claim read: a sweep costs what it
    deletes, never a listing of every claim kept (400 claims listed with their metadata took 73-119 ms of
    the host's CPU, an alert's ack stalled behind it)."""
    container = objectstore.container(connection, CLAIMS)
    last_hour = hour_of(cutoff - 3600)
    found = []
    try:
        hours = sorted(p.name for p in container.walk_blobs(name_starts_with=MARKERS, delimiter="/"))
    except ResourceNotFoundError:  # no alert has come yet
        return []
    for hour in hours:
        if hour.removeprefix(MARKERS).rstrip("/") > last_hour:
            break
        for marker in container.list_blobs(name_starts_with=hour):
            found.append(_claim_of(container, marker.name, cutoff))
    return found


def _claim_of(container: ContainerClient, marker: str, cutoff: float) -> ResolvedClaim:
    key = marker.rsplit("/", 1)[1]
    try:
        claim = container.get_blob_client(f"{key}.json").get_blob_properties()
    except ResourceNotFoundError:
        return ResolvedClaim(key, marker, None)
    try:
        resolved_at = float(claim.metadata.get(RESOLVED, "nan"))
    except ValueError:
        resolved_at = float("nan")
    return ResolvedClaim(key, marker, claim.etag if resolved_at < cutoff else None)


def forget_claim(connection: str, claim: ResolvedClaim) -> bool:
    """Delete a claim if it is still the one read (a delivery may have given it back and claimed it again, or
    its alert resolved again), then its marker; True when the claim was deleted."""
    container = objectstore.container(connection, CLAIMS)
    deleted = False
    if claim.etag is not None:
        try:
            container.delete_blob(f"{claim.key}.json", etag=claim.etag, match_condition=MatchConditions.IfNotModified)
            deleted = True
        except (ResourceNotFoundError, ResourceModifiedError):
            pass  # claimed again (not resolved: no marker owed) or resolved again (a newer marker stands for it)
    with contextlib.suppress(ResourceNotFoundError):
        container.delete_blob(claim.marker)
    return deleted


def unclaim(connection: str, key: str) -> None:
    """Give a claim back (its run did not start), so the sender's retry starts it."""
    with contextlib.suppress(ResourceNotFoundError):
        objectstore.container(connection, CLAIMS).delete_blob(f"{key}.json")
