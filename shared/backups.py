"""Backups in CNPG's vocabulary: a Backup record with its phases, and what the object store holds."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from shared.model import Model
from shared.objectstore import Container
from shared.walarchive import Continuity, Listing, check_continuity, parse_history

PENDING, STARTED, RUNNING, FINALIZING = "pending", "started", "running", "finalizing"
COMPLETED, FAILED, WAL_ARCHIVING_FAILING = "completed", "failed", "walArchivingFailing"
DONE_PHASES = {COMPLETED, FAILED}  # walArchivingFailing is retried (CNPG: the instance manager asks again)

Phase = Literal["pending", "started", "running", "finalizing", "completed", "failed", "walArchivingFailing"]


class Backup(Model):
    """CNPG's Backup: name, cluster, phase, backupId, beginWal / endWal, startedAt / stoppedAt, error."""

    name: str
    cluster: str
    namespace: str
    phase: Phase
    method: str = "barmanObjectStore"
    target: str | None = None
    instance: str | None = None
    backup_id: str | None = None
    begin_wal: str | None = None
    end_wal: str | None = None
    begin_lsn: str | None = None
    end_lsn: str | None = None
    started_at: str | None = None
    stopped_at: str | None = None
    error: str | None = None
    # a standby's copy can need WAL past its stop point: finalizing waits until the primary archived this one
    wait_for_wal: str | None = None

    @property
    def done(self) -> bool:
        return self.phase in DONE_PHASES


def backup_name(cluster: str, operation_id: str) -> str:
    """A Backup's name, unique per run (a hash of the whole operation id), a valid object name."""
    return f"{cluster[:40]}-b{hashlib.sha256(operation_id.encode()).hexdigest()[:10]}"


def archive_in_use(spec: Any) -> str:
    """Why a deploy is refused over an archive that is not empty, and the two ways out."""
    return (
        f"the object store {spec.backup.container}/ already holds WAL for server name {spec.server_name!r}: set "
        f"another backup.serverName, or tear the old cluster down with deleteBackups: true (DELETE "
        f"/api/clusters/{spec.name}?deleteBackups=true, which also works after a teardown that kept them)"
    )


def parse_backup_info(text: str) -> dict[str, str]:
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            info[key.strip()] = value.strip()
    return info


class StoredBackup(Model):
    """A base backup as barman-cloud left it: `<server>/base/<backupId>/backup.info` and its data."""

    backup_id: str
    name: str | None
    status: str
    begin_wal: str | None
    end_wal: str | None
    end_lsn: str | None = None
    begin_time: str | None
    end_time: str | None
    timeline: int | None
    data_files: int


class Inventory(Model):
    server: str
    container: str
    backups: list[StoredBackup]
    wal_names: list[str]
    histories: dict[int, list[tuple[int, int]]]
    newest_wal_at: str | None

    def completed(self) -> list[StoredBackup]:
        return sorted((b for b in self.backups if b.status == "DONE" and b.data_files), key=lambda b: b.end_time or "")

    def find(self, backup_id_or_name: str) -> StoredBackup | None:
        return next((b for b in self.backups if backup_id_or_name in (b.backup_id, b.name)), None)

    def continuity_from(self, begin_wal: str) -> Continuity:
        return check_continuity(Listing.from_names(self.wal_names), begin_wal, self.histories)


def read_inventory(container: Container, container_name: str, server: str) -> Inventory:
    """One listing of `<server>/`, plus each backup.info and history file (small)."""
    if not container.exists():
        raise LookupError(f"the object-store container {container_name!r} does not exist")
    blobs = container.blobs(f"{server}/")
    names = [b.name for b in blobs]
    backups = []
    for blob in blobs:
        parts = blob.name.split("/")
        if len(parts) == 4 and parts[1] == "base" and parts[3] == "backup.info":
            info = parse_backup_info(container.read(blob.name).decode())
            prefix = f"{server}/base/{parts[2]}/"
            data = [n for n in names if n.startswith(prefix) and n.split("/")[-1].startswith("data.tar")]
            backups.append(StoredBackup(
                backup_id=parts[2], name=_none(info.get("backup_name")), status=info.get("status", "UNKNOWN"),
                begin_wal=_none(info.get("begin_wal")), end_wal=_none(info.get("end_wal")),
                end_lsn=_none(info.get("end_xlog")), begin_time=_none(info.get("begin_time")),
                end_time=_none(info.get("end_time")),
                timeline=int(info["timeline"]) if info.get("timeline", "None").isdigit() else None,
                data_files=len(data),
            ))
    wal_blobs = [b for b in blobs if b.name.startswith(f"{server}/wals/")]
    histories: dict[int, list[tuple[int, int]]] = {}
    for blob in wal_blobs:
        if blob.name.endswith(".history"):
            timeline = int(blob.name.rsplit("/", 1)[1][:8], 16)
            histories[timeline] = parse_history(container.read(blob.name).decode())
    segments = [b for b in wal_blobs if len(b.name.rsplit("/", 1)[1].split(".")[0]) == 24
                and ".partial" not in b.name and not b.name.endswith(".backup")]
    newest = max((b.last_modified for b in segments), default=None)
    return Inventory(
        server=server, container=container_name, backups=backups, wal_names=[b.name for b in wal_blobs],
        histories=histories, newest_wal_at=newest.isoformat() if newest else None,
    )


def _none(value: Any) -> Any:
    return None if value in (None, "None", "") else value
