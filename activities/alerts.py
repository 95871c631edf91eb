"""The alert response's diagnoses and its one remedy: is there a writable primary, is the HA manager
able to fail over (and restarting it when not), what replication and archiving look like."""

from __future__ import annotations

import threading

import azure.durable_functions as df

from activities import platform, typed
from shared.logs import said
from shared.outcome import Outcome, done
from shared.spec import ClusterRef, ClusterSpec
from shared.sql import SqlError
from shared.status import ClusterStatus

bp = df.Blueprint()

WRITE_CHECK_SECONDS = 10.0


@bp.activity_trigger(input_name="cluster")
@typed
def check_primary(cluster: ClusterRef) -> Outcome:
    """A client's view: does a transaction commit (synchronously replicated) through the rw endpoint?"""
    status = platform().cluster_status(cluster.namespace, cluster.name)
    if not status.exists:
        return done("the cluster does not exist", writable=False, phase=status.phase)
    if status.current_primary is None:
        return done(f"no primary ({status.phase})", writable=False, phase=status.phase)
    try:
        commit_a_write(status)
    except (SqlError, RuntimeError, OSError) as err:
        reason = said(err)
        return done(f"primary {status.current_primary} does not take writes: {reason}", writable=False,
                    primary=status.current_primary, phase=status.phase)
    return done(f"primary {status.current_primary} takes writes ({status.phase})", writable=True,
                primary=status.current_primary, phase=status.phase)


def commit_a_write(status: ClusterStatus) -> None:
    """`txid_current()` makes the transaction write a commit record, which waits for the synchronous
    standby like any client's commit; cancelled if it hangs (no quorum), so the check stays bounded."""
    with platform().connect(status.namespace, status.name, "rw") as conn:
        timer = threading.Timer(WRITE_CHECK_SECONDS, conn.cancel)
        timer.start()
        try:
            conn.execute("SELECT txid_current()")
            conn.commit()
        finally:
            timer.cancel()


@bp.activity_trigger(input_name="spec")
@typed
def check_ha_manager(spec: ClusterSpec) -> Outcome:
    return platform().ha_manager_status(spec)


@bp.activity_trigger(input_name="spec")
@typed
def restore_ha_manager(spec: ClusterSpec) -> Outcome:
    return platform().restore_ha_manager(spec)


@bp.activity_trigger(input_name="cluster")
@typed
def diagnose_replication(cluster: ClusterRef) -> Outcome:
    """Lag and state per standby, and the primary's slots: what an on-call engineer looks at first."""
    status = platform().cluster_status(cluster.namespace, cluster.name)
    standbys = [
        {"name": i.name, "ready": i.ready, "state": i.state, "syncState": i.sync_state, "lagBytes": i.lag_bytes}
        for i in status.instances_status if i.role != "primary"
    ]
    slots = [s.model_dump(by_alias=True) for s in status.replication_slots]
    lagging = [f"{s['name']} {s['lagBytes']} bytes" for s in standbys if s["lagBytes"]]
    idle = [s["name"] for s in slots if not s["active"]]
    words = [
        f"phase {status.phase!r}",
        f"{sum(1 for s in standbys if s['ready'])}/{len(standbys)} standbys streaming",
        f"lagging: {', '.join(lagging)}" if lagging else "no standby lags",
        f"inactive slots: {', '.join(idle)}" if idle else f"{len(slots)} slot(s), all active",
    ]
    return done("; ".join(words), standbys=standbys, slots=slots, primary=status.current_primary)


@bp.activity_trigger(input_name="spec")
@typed
def diagnose_archiving(spec: ClusterSpec) -> Outcome:
    """The primary's archiver (CNPG's ContinuousArchiving condition) and whether the object store answers."""
    status = platform().cluster_status(spec.namespace, spec.name)
    condition = status.condition("ContinuousArchiving")
    archiving = condition.status if condition else "Unknown"
    try:
        container = platform().backup_container(spec)
        prefix = f"{spec.server_name}/wals/"
        segments = len(container.blobs(prefix))
        storage = f"object store {spec.backup.container}/{prefix} answers: {segments} WAL file(s)"
        reachable = True
    except Exception as err:  # any storage error is the diagnosis itself
        storage = f"object store {spec.backup.container} unreachable: {type(err).__name__}: {str(err)[:200]}"
        reachable = False
    message = condition.message if condition else ""
    errors = platform().archiving_errors(spec)
    seen = f"; newest archiver error: {errors[-1]}" if errors else ""
    return done(f"ContinuousArchiving {archiving} {message}; {storage}{seen}".strip(), archiving=archiving,
                storageReachable=reachable, recentErrors=errors)
