"""CNPG's objects as the API server returns them, read into pgha's ClusterStatus and Backup records.

CNPG's own vocabulary passes through unchanged (phases, conditions, Backup phases). What CNPG does
not put in the Cluster's status — which standbys are synchronous — follows from how it writes
`synchronous_standby_names` (pkg/postgres/replication at v1.30.0): `ANY n (…)` for the legacy
min/maxSyncReplicas and for `method: any`, so every listed standby is `quorum`; `FIRST n (…)` for
`method: first`, its names sorted as strings, so the first n ready standbys in that order are `sync`
and the rest `potential` (PostgreSQL's pg_stat_replication semantics). Only ready standbys of a cluster
the operator reports healthy count.
"""

from __future__ import annotations

from typing import Any

from shared import status as st
from shared.backups import Backup

PENDING_FAILOVER = "pending"  # CNPG's targetPrimary while it elects a new primary


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def cluster_status(namespace: str, name: str, cluster: dict[str, Any] | None,
                   pods: list[dict[str, Any]] | None = None) -> st.ClusterStatus:
    """A Cluster (and its pods, for roles and readiness) as pgha's ClusterStatus."""
    if cluster is None:
        return st.ClusterStatus(name=name, namespace=namespace, phase=st.NOT_FOUND)
    spec, status = cluster.get("spec") or {}, cluster.get("status") or {}
    expected = int(spec.get("instances") or status.get("instances") or 0)
    names = list(status.get("instanceNames") or [])
    by_pod = {p["metadata"]["name"]: p for p in pods or []}
    names += [n for n in sorted(by_pod) if n not in names]
    healthy = set((status.get("instancesStatus") or {}).get("healthy") or [])
    reported = status.get("instancesReportedState") or {}
    primary = status.get("currentPrimary")
    phase = status.get("phase") or st.SETTING_UP_PRIMARY
    synchronous = _synchronous(spec)
    conditions = [
        st.Condition(type=c["type"], status=c.get("status", "Unknown"), reason=c.get("reason", ""),
                     message=c.get("message", ""))
        for c in status.get("conditions") or [] if c.get("type")
    ]
    ready_sync = phase == st.HEALTHY and synchronous is not None
    ready = {n: pod_ready(by_pod[n]) if n in by_pod else n in healthy for n in names}
    sync_states = _sync_states(synchronous, _number(spec), [n for n in names if n != primary and ready[n]])
    instances = []
    for pod_name in names:
        pod = by_pod.get(pod_name)
        # the Cluster's currentPrimary is CNPG's word on it; pod labels follow it a moment later
        role_label = ((pod or {}).get("metadata") or {}).get("labels", {}).get("cnpg.io/instanceRole")
        known = primary and primary != PENDING_FAILOVER
        is_primary = pod_name == primary if known else role_label == "primary"
        state = reported.get(pod_name) or {}
        instances.append(st.InstanceStatus(
            name=pod_name, role="primary" if is_primary else "standby", ready=ready[pod_name],
            timeline=state.get("timeLineID"),
            sync_state="primary" if is_primary else (sync_states.get(pod_name, "async") if ready_sync else "async"),
            state=((pod or {}).get("status") or {}).get("phase") or ("healthy" if pod_name in healthy else None),
        ))
    return st.ClusterStatus(
        name=name, namespace=namespace, phase=phase, instances=expected,
        ready_instances=int(status.get("readyInstances") or 0),
        current_primary=primary if primary and primary != PENDING_FAILOVER else None,
        target_primary=status.get("targetPrimary"),
        instances_status=instances, conditions=conditions,
        first_recoverability_point=status.get("firstRecoverabilityPoint"),
        last_successful_backup=status.get("lastSuccessfulBackup"),
    )


def _synchronous(spec: dict[str, Any]) -> str | None:
    """CNPG's method: `any` for `method: any` and the legacy min/max knobs, `first`; None when asynchronous."""
    stanza = (spec.get("postgresql") or {}).get("synchronous")
    if stanza:
        return "first" if stanza.get("method") == "first" else "any"
    return "any" if spec.get("minSyncReplicas") or spec.get("maxSyncReplicas") else None


def _number(spec: dict[str, Any]) -> int:
    stanza = (spec.get("postgresql") or {}).get("synchronous")
    return int(stanza.get("number") or 0) if stanza else int(spec.get("maxSyncReplicas") or 0)


def _sync_states(method: str | None, number: int, ready_standbys: list[str]) -> dict[str, str]:
    """pg_stat_replication's sync_state of each ready standby under CNPG's list."""
    if method == "any":
        return dict.fromkeys(ready_standbys, "quorum")
    if method == "first":
        ordered = sorted(ready_standbys)  # sort.Strings: `x-10` before `x-2`, as CNPG lists them
        return {n: "sync" if i < number else "potential" for i, n in enumerate(ordered)}
    return {}


def with_recovery_window(status: st.ClusterStatus, object_store: dict[str, Any] | None,
                         server_name: str) -> st.ClusterStatus:
    """With the Barman Cloud plugin the Cluster's backup fields stay empty: the ObjectStore has them."""
    window = (((object_store or {}).get("status") or {}).get("serverRecoveryWindow") or {}).get(server_name) or {}
    if not window:
        return status
    return status.model_copy(update={
        "first_recoverability_point": window.get("firstRecoverabilityPoint") or status.first_recoverability_point,
        "last_successful_backup": window.get("lastSuccessfulBackupTime") or status.last_successful_backup,
    })


def backup_record(obj: dict[str, Any]) -> Backup:
    """A Backup CR as pgha's Backup (its phases are CNPG's; a Backup not yet seen by the operator is pending)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    phase = status.get("phase") or "pending"
    if phase not in ("pending", "started", "running", "finalizing", "completed", "failed", "walArchivingFailing"):
        phase, error = "failed", f"{phase}: {status.get('error') or 'the operator refused the Backup'}"
    else:
        error = status.get("error") or None
    return Backup(
        name=obj["metadata"]["name"], cluster=spec["cluster"]["name"], namespace=obj["metadata"]["namespace"],
        phase=phase, method=spec.get("method") or status.get("method") or "barmanObjectStore",
        target=spec.get("target") or "prefer-standby",
        instance=(status.get("instanceID") or {}).get("podName"),
        backup_id=status.get("backupId"), begin_wal=status.get("beginWal"), end_wal=status.get("endWal"),
        begin_lsn=status.get("beginLSN"), end_lsn=status.get("endLSN"),
        started_at=status.get("startedAt"), stopped_at=status.get("stoppedAt"), error=error,
    )


def deployment_available(deployment: dict[str, Any]) -> bool:
    """A Deployment with an Available condition True and a replica available (`kubectl rollout status`)."""
    status = deployment.get("status") or {}
    available = any(c.get("type") == "Available" and c.get("status") == "True" for c in status.get("conditions") or [])
    return available and int(status.get("availableReplicas") or 0) >= 1
