"""CNPG's objects as the API server returns them, read into pgha's ClusterStatus and Backup records.

CNPG's own vocabulary passes through unchanged (phases, conditions, Backup phases). What CNPG does
not put in the Cluster's status — which standbys are synchronous — follows from how it writes
`synchronous_standby_names` (pkg/postgres/replication at v1.30.0): `ANY n (…)` for the legacy
min/maxSyncReplicas and for `method: any`, so every listed standby is `quorum`; `FIRST n (…)` for
`method: first`, its names sorted as strings, so the first n ready standbys in that order are `sync`
and the rest `potential` (PostgreSQL's pg_stat_replication semantics). Only ready standbys of a cluster
the operator reports healthy count.

`failure` is set only on a sign that the cluster cannot get where a run waits for it to go without a
person (see `failure`); routine states (pods pending, a restart or two, failing over) never set it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared import status as st
from shared.backups import Backup
from shared.logs import redact

PENDING_FAILOVER = "pending"  # CNPG's targetPrimary while it elects a new primary
CRASHLOOP_RESTARTS = 3  # PGHA_CRASHLOOP_RESTARTS' default
CLUSTER_LABEL = "cnpg.io/cluster"  # pkg/utils/labels_annotations.go ClusterLabelName (v1.30.0)
INSTANCE_LABEL = "cnpg.io/instanceName"  # on CNPG's instance Jobs and pods (pkg/utils/labels_annotations.go)
JOB_ROLE_LABEL = "cnpg.io/jobRole"  # JobRoleLabelName: initdb, import, full-recovery, snapshot-recovery, …
# its Job is the in-place major upgrade's (pkg/reconciler/majorupgrade/job.go, v1.30.0): CNPG handles its
# failure itself (a rollback of the image) and leaves it out of its own failed-job check
MAJOR_UPGRADE_ROLE = "major-upgrade"


def not_ready(conditions: list[dict[str, Any]], phase: str) -> list[dict[str, Any]]:
    """The conditions with Ready as CNPG sets it for `phase` (pkg/resources/status/transactions.go
    SetClusterReadyCondition, meta.SetStatusCondition: lastTransitionTime moves only when the status does). The
    whole list: a merge patch replaces a list."""
    ready = phase == st.HEALTHY
    condition = {"type": "Ready", "status": "True" if ready else "False",
                 "reason": "ClusterIsReady" if ready else "ClusterIsNotReady",
                 "message": "Cluster is Ready" if ready else "Cluster Is Not Ready"}
    before = next((c for c in conditions if c.get("type") == "Ready"), None)
    moved = before is None or before.get("status") != condition["status"]
    condition["lastTransitionTime"] = (datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moved
                                       else before.get("lastTransitionTime") if before else None)
    return [c for c in conditions if c.get("type") != "Ready"] + [condition]


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def cluster_status(namespace: str, name: str, cluster: dict[str, Any] | None,
                   pods: list[dict[str, Any]] | None = None, jobs: list[dict[str, Any]] | None = None,
                   crashloop_restarts: int = CRASHLOOP_RESTARTS) -> st.ClusterStatus:
    """A Cluster (and its instance pods, for roles and readiness; its Jobs, for a bootstrap that failed) as
    pgha's ClusterStatus."""
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
    # a supervised update waiting for its primary's switchover has every instance up and streaming as before
    ready_sync = phase in (st.HEALTHY, st.WAITING_FOR_USER) and synchronous is not None
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
        name=name, namespace=namespace, phase=phase, phase_reason=status.get("phaseReason") or "",
        failure=failure(cluster, pods or [], jobs or [], crashloop_restarts), instances=expected,
        ready_instances=int(status.get("readyInstances") or 0),
        current_primary=primary if primary and primary != PENDING_FAILOVER else None,
        target_primary=status.get("targetPrimary"),
        instances_status=instances, conditions=conditions,
        first_recoverability_point=status.get("firstRecoverabilityPoint"),
        last_successful_backup=status.get("lastSuccessfulBackup"),
    )


def failure(cluster: dict[str, Any], pods: list[dict[str, Any]], jobs: list[dict[str, Any]],
            crashloop_restarts: int = CRASHLOOP_RESTARTS) -> str | None:
    """Why the cluster cannot become ready without a person, quoting each final sign; None when there is none.

    1. The Cluster's phase is CNPG's unrecoverable one: CNPG sets it with a phaseReason (RegisterPhase, or
       status.phase/phaseReason directly) when instance creation Jobs failed, when no pod is alive, when
       an initialized cluster has no PVCs left, or on a bad promotion token (internal/controller/
       cluster_controller.go reconcileResources, cluster_create.go createPrimaryInstance at v1.30.0); it
       stays there until a person acts.
    2. An instance pod's container waits in CrashLoopBackOff (the kubelet's reason while it backs off a
       restart: by default 10s, doubling, up to 5 min) with restartCount at `crashloop_restarts` or more: the
       container keeps failing the same way (k8s.io/api core/v1 ContainerStatus: state.waiting,
       lastState.terminated, restartCount, v0.36.3). Init containers count as CNPG's IsPodAlive counts them
       (pkg/utils/pod_conditions.go, v1.30.0).
    3. A Job CNPG made to create an instance (labels cnpg.io/cluster and cnpg.io/jobRole, pkg/specs/jobs.go
       CreatePrimaryJob, v1.30.0) has the condition Failed=True: the Job controller gave up (its
       backoffLimit, which CNPG leaves at Kubernetes' default of 6, is exceeded; k8s.io/api batch/v1
       JobSpec and JobCondition, v0.36.3). CNPG's own check is the same (pkg/utils/job_conditions.go
       JobHasFailed, from v1.29.2 and in v1.30.0); CNPG then registers sign 1 on its next reconciliation,
       and before v1.29.2 it never did: the Cluster stayed "Setting up primary".
    """
    signs = []
    status = cluster.get("status") or {}
    if status.get("phase") == st.UNRECOVERABLE:
        signs.append(f"CNPG: {st.UNRECOVERABLE}: {(status.get('phaseReason') or 'no reason given').strip()}")
    ready = {p["metadata"]["name"] for p in pods if pod_ready(p)}
    for job in jobs:
        labels = (job.get("metadata") or {}).get("labels") or {}
        role = labels.get(JOB_ROLE_LABEL)
        if not role or role == MAJOR_UPGRADE_ROLE or labels.get(INSTANCE_LABEL) in ready:
            continue  # a Job whose instance runs now is history (Jobs live as long as their Cluster)
        job_status = job.get("status") or {}
        failed = next((c for c in job_status.get("conditions") or []
                       if c.get("type") == "Failed" and c.get("status") == "True"), None)
        if failed is not None:
            said = ": ".join(t for t in (failed.get("reason"), failed.get("message")) if t)
            signs.append(f"{role} job {job['metadata']['name']} failed: {said or 'no reason given'}")
        elif int(job_status.get("failed") or 0) >= crashloop_restarts:
            # the Job controller retries a failed pod up to backoffLimit (6) with a back-off doubling from 10 s:
            # some 10 minutes before Failed; this many failed pods already say the same
            signs.append(f"{role} job {job['metadata']['name']}: {job_status['failed']} pods failed")
    for found in pods:
        pod_status = found.get("status") or {}
        for container in (pod_status.get("initContainerStatuses") or []) + (pod_status.get("containerStatuses") or []):
            waiting = (container.get("state") or {}).get("waiting") or {}
            restarts = int(container.get("restartCount") or 0)
            if waiting.get("reason") == "CrashLoopBackOff" and restarts >= crashloop_restarts:
                signs.append(f"pod {found['metadata']['name']} container {container.get('name')} in "
                             f"CrashLoopBackOff after {restarts} restarts; {_last_exit(container)}")
    return redact("; ".join(signs))[:1000] or None  # a container's message may quote a connection string


def _last_exit(container: dict[str, Any]) -> str:
    """`lastState.terminated`: the reason, exit code and message of the container's last run."""
    ended = (container.get("lastState") or {}).get("terminated")
    if not ended:
        return "no last termination recorded"
    text = f"last exit: {ended.get('reason') or 'unknown reason'} (exit code {ended.get('exitCode', '?')})"
    message = " ".join(str(ended.get("message") or "").split())
    return f"{text}: {message[:300]}" if message else text


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
        error = redact(status["error"]) if status.get("error") else None  # barman's stderr, as CNPG keeps it
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
