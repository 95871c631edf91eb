"""The object store side of a cluster: pre-flight, WAL archiving, schedules, deletion of backups."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import azure.durable_functions as df

from activities import platform, stored_inventory, typed
from shared.backups import Backup
from shared.logs import said
from shared.outcome import Outcome, done, skipped
from shared.payloads import BackupRef, InventoryRequest, Preflight, StartBackup
from shared.settings import Settings
from shared.spec import ClusterRef, ClusterSpec

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
@typed
def preflight(request: Preflight) -> Outcome:
    """The doctor's checks the run needs, before it makes or removes anything; answers the spec settled against
    the platform. Without a purpose: a restore's for a recovery spec, else a deploy's."""
    spec = request.spec
    return platform().preflight(spec, request.purpose or ("restore" if spec.recovery else "deploy"),
                                request.delete_backups)


@bp.activity_trigger(input_name="spec")
@typed
def preflight_backup_destination(spec: ClusterSpec) -> Outcome:
    """Refuse to archive under a server name that already holds WAL (two clusters would mix their WAL)."""
    return platform().preflight_backup_destination(spec)


@bp.activity_trigger(input_name="spec")
@typed
def check_wal_archiving(spec: ClusterSpec) -> Outcome:
    """Switch WAL on the primary and find that very segment in the object store."""
    return platform().switch_wal_and_find_segment(spec)


@bp.activity_trigger(input_name="spec")
@typed
def archive_last_wal(spec: ClusterSpec) -> Outcome:
    """Before a cluster whose backups are kept goes: its last commits into the archive. A stopping server does
    not archive the segment it is writing, so without this a restore "to the latest" would end at the last
    segment switch (up to archive_timeout earlier). Best effort: a teardown is not held back by it."""
    try:
        return platform().switch_wal_and_find_segment(spec)
    except Exception as err:  # no primary, no connection, no store: the teardown goes on, saying what is lacking
        return skipped(f"could not archive the last WAL ({said(err)}); the archive ends at the "
                       "last segment it already holds")


@bp.activity_trigger(input_name="spec")
@typed
def ensure_scheduled_backup(spec: ClusterSpec) -> Outcome:
    return platform().ensure_scheduled_backup(spec)


@bp.activity_trigger(input_name="cluster")
@typed
def remove_scheduled_backups(cluster: ClusterRef) -> Outcome:
    return platform().remove_scheduled_backups(cluster.namespace, cluster.name)


@bp.activity_trigger(input_name="spec")
@typed
def delete_backups(spec: ClusterSpec) -> Outcome:
    return platform().delete_backups(spec)


@bp.activity_trigger(input_name="spec")
@typed
def check_archiving(spec: ClusterSpec) -> Outcome:
    """kubectl-cnpg's "Working WAL archiving": the ContinuousArchiving condition and pg_stat_archiver."""
    status = platform().cluster_status(spec.namespace, spec.name)
    condition = status.condition("ContinuousArchiving")
    if condition is None or condition.status != "True":
        message = condition.message if condition else "no primary"
        if not platform().backup_container(spec).exists():
            message += f"; the object-store container {spec.backup.container!r} does not exist"
        raise RuntimeError(f"WAL archiving is not working: {message}")
    return done(f"Working WAL archiving: OK ({condition.message})")


@bp.activity_trigger(input_name="request")
@typed
def start_backup(request: StartBackup) -> Backup:
    """Create the Backup (CNPG's on-demand backup); a second delivery finds the same record."""
    return platform().start_backup(request.spec, request.backup_name)


@bp.activity_trigger(input_name="backup")
@typed
def get_backup(backup: BackupRef) -> Backup:
    return platform().get_backup(backup.namespace, backup.name, backup.backup_name)


@bp.activity_trigger(input_name="backup")
@typed
def delete_backup(backup: BackupRef) -> Outcome:
    """Remove a Backup record (never the backup's files): one stuck in walArchivingFailing blocks the next."""
    return platform().delete_backup(backup.namespace, backup.name, backup.backup_name)


@bp.activity_trigger(input_name="request")
@typed
def inventory_backups(request: InventoryRequest) -> Outcome:
    """The object store as barman-cloud wrote it: the backup's files, WAL continuity, recovery-point age."""
    spec = request.spec
    try:
        stored = stored_inventory(spec)
    except LookupError as err:
        raise RuntimeError(str(err)) from None
    completed = stored.completed()
    if not completed:
        raise RuntimeError(f"no completed backup under {spec.backup.container}/{spec.server_name}/base/")
    wanted = request.backup_id
    if request.choose == "random":
        window_start = datetime.now(UTC) - timedelta(hours=request.window_hours)
        recent = [b for b in completed if b.end_time and datetime.fromisoformat(b.end_time) >= window_start]
        if not recent:
            raise RuntimeError(f"no completed backup in the last {request.window_hours} hours")
        backup = random.Random(request.seed).choice(recent)
    elif wanted:
        backup = stored.find(wanted)
        if backup is None:
            raise RuntimeError(f"backup {wanted} not found under {spec.backup.container}/{spec.server_name}/base/")
    else:
        backup = completed[-1]
    if backup.status != "DONE" or not backup.data_files:
        raise RuntimeError(f"backup {backup.backup_id}: backup.info status {backup.status}, "
                           f"{backup.data_files} data file(s)")
    if not backup.begin_wal:
        raise RuntimeError(f"backup {backup.backup_id} has no begin WAL in backup.info")
    continuity = stored.continuity_from(backup.begin_wal)
    if not continuity.ok:
        raise RuntimeError(continuity.summary())
    age = None
    if stored.newest_wal_at:
        age = (datetime.now(UTC) - datetime.fromisoformat(stored.newest_wal_at)).total_seconds()
    limit = Settings.from_env().max_recovery_point_age_seconds
    if age is None or age > limit:
        raise RuntimeError(f"newest archived WAL is {age:.0f}s old, over the limit of {limit}s" if age is not None
                           else "no archived WAL")
    first = completed[0]
    return done(
        f"backup {backup.backup_id} DONE with {backup.data_files} data file(s); {continuity.summary()}; "
        f"newest WAL {age:.0f}s old (limit {limit}s)",
        backupId=backup.backup_id, backupName=backup.name, beginWal=backup.begin_wal, endWal=backup.end_wal,
        firstRecoverabilityPoint=first.end_time, lastSuccessfulBackup=completed[-1].end_time,
        newestWalAt=stored.newest_wal_at, recoveryPointAgeSeconds=round(age, 1), walEnd=continuity.end,
        timelines=continuity.timelines, segmentsChecked=continuity.checked,
    )
