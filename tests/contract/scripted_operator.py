"""ScriptedOperator: a test double of CloudNativePG's controller, on FakeKubeApi's hooks.

It advances objects the way the operator documents: a new Cluster gets pods and PVCs, then goes
"Setting up primary" → "Creating a new replica" → "Cluster in healthy state" over the next reads; a
switchover (status.targetPrimary) moves the primary role; a deleted primary pod is a failover ("Failing
over", targetPrimary "pending", then a new primary) and the pod comes back as a replica; a deleted
Cluster takes its pods and PVCs with it. Where each behaviour comes from (cloudnative-pg v1.30.0,
plugin-barman-cloud v0.14.0):

- PodMonitor: made for `monitoring.enablePodMonitor` only when the monitoring.coreos.com CRD is there,
  else a warning "PodMonitor CRD not present" (internal/controller/cluster_create.go,
  createOrPatchPodMonitor); deleted with the Cluster (owner reference).
- Plugin recovery: the recovery source's ObjectStore is looked up by `barmanObjectName` in the Cluster's
  namespace; while it is missing the plugin's reconciler hook requeues and the Cluster's reconciliation
  stops (plugin internal/cnpgi/operator/reconciler.go; CNPG internal/cnpi/plugin/client/reconciler.go).
  Nothing owns an ObjectStore: deleting the Cluster leaves it.
- Backups: `pending` while another Backup of the cluster is not done (backup_controller.go,
  "A backup is already in progress or waiting to be started, retrying"); in-tree, with archiving
  broken, `started` while the instance manager retries, then `walArchivingFailing`, where it stays
  (pkg/management/postgres/backup.go; the controller only requeues it); the plugin's fails instead.
- `kubectl cnpg psql` (pods/exec, container `postgres`): pgha's marker commit answers `xid|timestamp`, and
  `pg_walfile_name(pg_switch_wal())` the closed segment and the switch's LSN; the segment is archived —
  into `archive`, the object store's blob names, unless the cluster's archiving is broken
  (`broken_archiving`). A standby refuses the marker as PostgreSQL does (varsup.c GetNewTransactionId).

What a test can make go wrong for good (`failing_bootstrap`, `crashlooping`, `unrecoverable`):

- A bootstrap Job that fails: CNPG creates the first instance's PVC and a Job `<cluster>-1-<role>`
  labelled cnpg.io/cluster, cnpg.io/instanceName and cnpg.io/jobRole (initdb, import, full-recovery,
  snapshot-recovery, pgbasebackup: pkg/specs/jobs.go CreatePrimaryJob) with no backoffLimit of its own,
  so Kubernetes' default 6 applies; its pods (restartPolicy Never, no cnpg.io/podRole) fail one per
  reconciliation here, and after the 7th the Job controller sets FailureTarget and Failed, reason
  BackoffLimitExceeded, "Job has reached the specified backoff limit" (k8s.io/api batch/v1 types.go
  v0.36.3; kubernetes pkg/controller/job). CNPG waits while the Job runs and, on its next reconciliation
  after the Job failed, registers the unrecoverable phase naming it (internal/controller/
  cluster_controller.go reconcileResources, cluster_status.go failedJobNames: v1.29.2 and v1.30.0).
  No instance pod is made: the pod comes only after its Job completed.
- An instance that crash-loops: the first instance's `postgres` container exits 1 each time; the pod
  stays Running and not Ready, and the kubelet reports the container waiting in CrashLoopBackOff with
  restartCount one higher and lastState.terminated (reason Error, exit code 1; no message: CNPG sets no
  terminationMessagePolicy, so only /dev/termination-log would give one) on each reconciliation here
  (k8s.io/api core/v1 ContainerStatus, v0.36.3; kubelet kuberuntime's "back-off … restarting failed
  container"). The cluster stays "Setting up primary".
- The unrecoverable phase: CNPG's RegisterPhase(PhaseUnrecoverable, reason) sets status.phase and
  status.phaseReason and the Ready condition False, ClusterIsNotReady (pkg/resources/status/
  transactions.go SetPhase, SetClusterReadyCondition) and the cluster stays there until a person acts.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import uuid
from typing import Any

from tests.contract.fake_kube import FakeKubeApi
from tests.contract.installed import CRD_PATH

CNPG = "/apis/postgresql.cnpg.io/v1/namespaces"
SINCE = "2026-11-26T03:00:00Z"  # metav1.Condition: lastTransitionTime is required
READY = {"type": "Ready", "status": "True", "reason": "ClusterIsReady", "message": "Cluster is Ready",
         "lastTransitionTime": SINCE}
ARCHIVING = {"type": "ContinuousArchiving", "status": "True", "reason": "ContinuousArchivingSuccess",
             "message": "Continuous archiving is working", "lastTransitionTime": SINCE}
ARCHIVING_FAILING = {**ARCHIVING, "status": "False", "reason": "ContinuousArchivingFailing",
                     "message": "unexpected failure invoking barman-cloud-wal-archive: exit status 4"}
UNRECOVERABLE = "Cluster is unrecoverable and needs manual intervention"  # api/v1 cluster_types.go PhaseUnrecoverable
NOT_READY = {"type": "Ready", "status": "False", "reason": "ClusterIsNotReady", "message": "Cluster Is Not Ready",
             "lastTransitionTime": SINCE}
NO_POD_ALIVE = "No pods are active, the cluster needs manual intervention "  # cluster_controller.go, v1.30.0
JOB_BACKOFF_LIMIT = 6  # batch/v1 JobSpec.backoffLimit's default; CNPG's instance Jobs set none (pkg/specs/jobs.go)
BACKOFF_LIMIT_EXCEEDED = {"reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}
JOBS = "/apis/batch/v1/namespaces"
DEFAULT_IMAGE = "ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie"  # pkg/versions/versions.go, v1.30.0


def pod(namespace: str, cluster: str, name: str, role: str, ready: bool, zone: int,
        image: str = DEFAULT_IMAGE, resources: dict[str, Any] | None = None) -> dict[str, Any]:
    """An instance pod: CNPG's postgres container runs status.image with the Cluster's spec.resources."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace,
        "uid": str(uuid.uuid4()),  # the API server's: a pod made again under the same name has a new one
        "labels": {"cnpg.io/cluster": cluster, "cnpg.io/podRole": "instance", "cnpg.io/instanceRole": role,
                   "cnpg.io/instanceName": name}},
        "spec": {"nodeName": f"aks-postgres-{zone}",
                 "containers": [{"name": "postgres", "image": image, "resources": resources or {}}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def server_name(cluster: dict[str, Any]) -> str:
    """Where the cluster archives: the plugin's `serverName` parameter, or barmanObjectStore's, else its name."""
    spec = cluster["spec"]
    for plugin in spec.get("plugins") or []:
        if plugin.get("isWALArchiver"):
            return (plugin.get("parameters") or {}).get("serverName") or cluster["metadata"]["name"]
    return ((spec.get("backup") or {}).get("barmanObjectStore") or {}).get("serverName") or cluster["metadata"]["name"]


def bootstrap_role(cluster: dict[str, Any]) -> str:
    """The cnpg.io/jobRole of the Job that makes the first instance (pkg/specs/jobs.go, v1.30.0)."""
    bootstrap = cluster["spec"].get("bootstrap") or {}
    if "recovery" in bootstrap:
        return "snapshot-recovery" if bootstrap["recovery"].get("volumeSnapshots") else "full-recovery"
    if "pg_basebackup" in bootstrap:
        return "pgbasebackup"
    return "import" if (bootstrap.get("initdb") or {}).get("import") else "initdb"


def job_failed(job: dict[str, Any]) -> bool:
    """pkg/utils/job_conditions.go JobHasFailed: the condition Failed=True, never the failed-pod count."""
    return any(c.get("type") == "Failed" and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


class ScriptedOperator:
    def __init__(self, api: FakeKubeApi, zones: int = 3) -> None:
        self.api = api
        self.archive: list[str] = []  # blob names in the object store
        self.broken_archiving: set[str] = set()  # cluster names whose WAL archiving fails
        self.failing_bootstrap: set[str] = set()  # cluster names whose first instance's Job fails for good
        self.crashlooping: set[str] = set()  # cluster names whose first instance's postgres container crash-loops
        self.unrecoverable: dict[str, str] = {}  # cluster name -> the phaseReason CNPG registers next
        self.stalled: set[str] = set()  # cluster paths whose reconciliation a plugin hook stopped
        self.segments = itertools.count(3)
        api.on_write.append(self.written)
        api.on_read.append(self.read)
        api.on_exec = self.exec
        for n in range(1, zones + 1):
            api.put(f"/api/v1/nodes/aks-postgres-{n}", {"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": f"aks-postgres-{n}", "labels": {"topology.kubernetes.io/zone": f"westus3-{n}"}}})

    # ---- writes ----------------------------------------------------------------------------------
    def written(self, api: FakeKubeApi, path: str, obj: dict[str, Any]) -> None:
        parts = path.strip("/").split("/")
        if "/clusters/" in path and len(parts) == 7:
            if obj.get("deleted"):
                self._cluster_deleted(parts[4], parts[6])
            elif not obj.get("status"):
                self._cluster_created(parts[4], parts[6], obj)
        elif "/pods/" in path and obj.get("deleted"):
            self._pod_deleted(parts[3], parts[5], obj)
        elif "/backups/" in path and not obj.get("deleted") and not obj.get("status"):
            obj["status"] = {"phase": "pending", "method": obj["spec"].get("method", "barmanObjectStore")}

    def _missing_recovery_store(self, namespace: str, cluster: dict[str, Any]) -> str | None:
        source = ((cluster["spec"].get("bootstrap") or {}).get("recovery") or {}).get("source")
        external = next((e for e in cluster["spec"].get("externalClusters") or [] if e["name"] == source), {})
        store = ((external.get("plugin") or {}).get("parameters") or {}).get("barmanObjectName")
        stores = f"/apis/barmancloud.cnpg.io/v1/namespaces/{namespace}/objectstores"
        return store if store and f"{stores}/{store}" not in self.api.objects else None

    def _cluster_created(self, namespace: str, name: str, cluster: dict[str, Any]) -> None:
        if self._missing_recovery_store(namespace, cluster):  # "barman object configuration not found, requeuing"
            self.stalled.add(f"{CNPG}/{namespace}/clusters/{name}")
            return
        count = int(cluster["spec"]["instances"])
        if name in self.failing_bootstrap:
            self._bootstrap_job(namespace, name, cluster, count)
            return
        names = [f"{name}-{n}" for n in range(1, count + 1)]
        image = cluster["spec"].get("imageName") or DEFAULT_IMAGE  # status.image: what every pod runs
        for n, pod_name in enumerate(names, start=1):
            self.api.objects[f"/api/v1/namespaces/{namespace}/pods/{pod_name}"] = pod(
                namespace, name, pod_name, "primary" if n == 1 else "replica", False, (n - 1) % 3 + 1, image,
                cluster["spec"].get("resources"))
            self.api.objects[f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{pod_name}"] = {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": pod_name, "namespace": namespace, "labels": {"cnpg.io/cluster": name}}}
        crd = f"{CRD_PATH}/podmonitors.monitoring.coreos.com" in self.api.objects
        if (cluster["spec"].get("monitoring") or {}).get("enablePodMonitor") and crd:
            self.api.objects[f"/apis/monitoring.coreos.com/v1/namespaces/{namespace}/podmonitors/{name}"] = {
                "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
                "metadata": {"name": name, "namespace": namespace}}
        cluster["status"] = {"phase": "Setting up primary", "instances": count, "readyInstances": 0, "image": image,
                             "instanceNames": names, "targetPrimary": names[0], "conditions": []}

    def _bootstrap_job(self, namespace: str, name: str, cluster: dict[str, Any], count: int) -> None:
        """The first instance's PVC and Job, and the Cluster waiting on it (CreatePrimaryJob, v1.30.0)."""
        instance, role = f"{name}-1", bootstrap_role(cluster)
        self.api.objects[f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{instance}"] = {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": instance, "namespace": namespace, "labels": {"cnpg.io/cluster": name}}}
        labels = {"cnpg.io/instanceName": instance, "cnpg.io/cluster": name, "cnpg.io/jobRole": role,
                  "app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": name,
                  "app.kubernetes.io/component": "database", "app.kubernetes.io/managed-by": "cloudnative-pg"}
        job = f"{instance}-{role}"
        self.api.objects[f"{JOBS}/{namespace}/jobs/{job}"] = {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job, "namespace": namespace, "labels": labels, "ownerReferences": [
                {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "name": name, "controller": True}]},
            "spec": {"backoffLimit": JOB_BACKOFF_LIMIT, "completions": 1, "parallelism": 1,  # as defaulted
                     "template": {"metadata": {"labels": labels}, "spec": {"restartPolicy": "Never"}}},
            "status": {"active": 1, "startTime": SINCE}}
        cluster["status"] = {"phase": "Setting up primary", "instances": count, "readyInstances": 0,
                             "instanceNames": [instance], "targetPrimary": instance, "conditions": []}

    def _jobs(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return [o for k, o in sorted(self.api.objects.items()) if k.startswith(f"{JOBS}/{namespace}/jobs/")
                and o["metadata"]["labels"].get("cnpg.io/cluster") == name]

    def _run_job_pod(self, namespace: str, job: dict[str, Any]) -> None:
        """The Job controller's step: one more pod of the Job fails; past backoffLimit the Job has failed."""
        status, name = job["status"], job["metadata"]["name"]
        status["failed"] = int(status.get("failed") or 0) + 1
        attempt = hashlib.sha256(f"{name}/{status['failed']}".encode()).hexdigest()[:5]
        self.api.objects[f"/api/v1/namespaces/{namespace}/pods/{name}-{attempt}"] = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{name}-{attempt}", "namespace": namespace,
                         "labels": {**job["spec"]["template"]["metadata"]["labels"], "job-name": name,
                                    "batch.kubernetes.io/job-name": name}},
            "status": {"phase": "Failed", "containerStatuses": [{
                "name": job["metadata"]["labels"]["cnpg.io/jobRole"], "ready": False, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}
        if status["failed"] > job["spec"]["backoffLimit"]:
            status["active"] = 0
            status["conditions"] = [{"type": kind, "status": "True", **BACKOFF_LIMIT_EXCEEDED,
                                     "lastProbeTime": SINCE, "lastTransitionTime": SINCE}
                                    for kind in ("FailureTarget", "Failed")]

    @staticmethod
    def _crash(found: dict[str, Any]) -> None:
        """The kubelet's report of a container that exited again and waits to be restarted."""
        before = (found["status"].get("containerStatuses") or [{}])[0]
        restarts = int(before.get("restartCount") or 0) + 1
        pod, namespace = found["metadata"]["name"], found["metadata"]["namespace"]
        delay = min(10 * 2 ** (restarts - 1), 300)  # the kubelet's back-off: 10s doubling, at most 5 min
        found["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
        found["status"]["containerStatuses"] = [{
            "name": "postgres", "ready": False, "started": False, "restartCount": restarts,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off {delay}s restarting failed "
                                  f"container=postgres pod={pod}_{namespace}(uid)"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": SINCE,
                                         "finishedAt": SINCE}}}]

    def _cluster_deleted(self, namespace: str, name: str) -> None:
        for key in list(self.api.objects):
            labels = (self.api.objects[key].get("metadata") or {}).get("labels") or {}
            if labels.get("cnpg.io/cluster") == name and f"/namespaces/{namespace}/" in key:
                del self.api.objects[key]
        self.api.objects.pop(f"/apis/monitoring.coreos.com/v1/namespaces/{namespace}/podmonitors/{name}", None)

    def _pod_deleted(self, namespace: str, name: str, gone: dict[str, Any]) -> None:
        cluster = self.api.objects.get(f"{CNPG}/{namespace}/clusters/{gone['metadata']['labels']['cnpg.io/cluster']}")
        if cluster and cluster["status"].get("currentPrimary") == name:
            survivors = [n for n in cluster["status"]["instanceNames"] if n != name]
            cluster["status"].update(phase="Failing over", phaseReason=f"Initiating a failover from {name}",
                                     targetPrimary="pending" if survivors else name, readyInstances=len(survivors))
            cluster["status"]["conditions"] = [{**READY, "status": "False", "reason": "ClusterIsNotReady"}, ARCHIVING]
        recreated = copy.deepcopy(gone)
        recreated.pop("deleted", None)
        recreated["metadata"]["uid"] = str(uuid.uuid4())
        recreated["metadata"]["labels"]["cnpg.io/instanceRole"] = "replica"
        recreated["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
        self.api.objects[f"/api/v1/namespaces/{namespace}/pods/{name}"] = recreated  # the StatefulSet's way

    # ---- reads: one step of reconciliation each --------------------------------------------------
    def read(self, api: FakeKubeApi, path: str) -> None:
        parts = path.strip("/").split("/")
        if path in self.stalled and path in api.objects:
            if self._missing_recovery_store(parts[4], api.objects[path]) is None:
                self.stalled.discard(path)
                self._cluster_created(parts[4], parts[6], api.objects[path])
        elif "/clusters/" in path and len(parts) == 7 and path in api.objects:
            self._reconcile(parts[4], api.objects[path])
        elif "/backups/" in path and path in api.objects:
            self._advance_backup(parts[4], api.objects[path])

    def _advance_backup(self, namespace: str, backup: dict[str, Any]) -> None:
        status, cluster = backup["status"], backup["spec"]["cluster"]["name"]
        if status["phase"] == "pending":
            others = [b for p, b in self.api.objects.items() if f"/namespaces/{namespace}/backups/" in p
                      and b is not backup and b["spec"]["cluster"]["name"] == cluster
                      and (b.get("status") or {}).get("phase") not in ("pending", "completed", "failed")]
            if not others:
                status.update(phase="started", instanceID={"podName": f"{cluster}-2"},
                              startedAt="2026-11-26T03:00:00Z")
        elif status["phase"] == "started" and cluster in self.broken_archiving:
            if backup["spec"].get("method") == "plugin":
                status.update(phase="failed", error="WAL archiving is not working")
            else:  # ensureWalArchiveIsWorking gave up: the phase stays until the pod changes
                status.update(phase="walArchivingFailing")
        elif status["phase"] == "started":
            status.update(phase="running")
        elif status["phase"] == "running":
            status.update(phase="completed", backupId="20261126T030000", beginWal="0" * 23 + "3",
                          endWal="0" * 23 + "3", stoppedAt="2026-11-26T03:00:09Z")

    def exec(self, api: FakeKubeApi, namespace: str, pod: str, container: str,
             command: list[str]) -> tuple[str, str, int]:
        if container != "postgres" or command[:1] != ["psql"]:
            return "", f"unexpected exec: {container} {command}", 126
        found = api.objects[f"/api/v1/namespaces/{namespace}/pods/{pod}"]
        if found["metadata"]["labels"].get("cnpg.io/instanceRole") != "primary":
            return "", "ERROR:  cannot assign TransactionIds during recovery\n", 1
        cluster = api.objects[f"{CNPG}/{namespace}/clusters/{found['metadata']['labels']['cnpg.io/cluster']}"]
        segment = f"{1:08X}{0:08X}{next(self.segments):08X}"
        if cluster["metadata"]["name"] not in self.broken_archiving:
            self.archive.append(f"{server_name(cluster)}/wals/{segment[:16]}/{segment}")
        # psql -XAt: the marker's row (its xid, clock_timestamp() as PostgreSQL prints a timestamptz), then
        # the switch's (pg_walfile_name of the switch's answer, which is the closed segment's end + 1)
        xid = 1000 + int(segment[-8:], 16)
        return (f"{xid}|2026-11-26 03:00:0{int(segment[-1], 16) % 10}.123456+00\n"
                f"{segment}|0/{int(segment[-8:], 16) + 1:X}000000\n"), "", 0

    def _pods(self, namespace: str, names: list[str]) -> dict[str, dict[str, Any]]:
        return {n: self.api.objects[f"/api/v1/namespaces/{namespace}/pods/{n}"] for n in names
                if f"/api/v1/namespaces/{namespace}/pods/{n}" in self.api.objects}

    def _reconcile(self, namespace: str, cluster: dict[str, Any]) -> None:
        status, name = cluster["status"], cluster["metadata"]["name"]
        names = status["instanceNames"]
        pods = self._pods(namespace, names)
        jobs = [j for j in self._jobs(namespace, name) if j["metadata"]["labels"].get("cnpg.io/jobRole")]
        failed = [j["metadata"]["name"] for j in jobs if job_failed(j)]
        if status["phase"] == UNRECOVERABLE:
            pass  # until a person acts
        elif name in self.unrecoverable:
            self._register_unrecoverable(status, self.unrecoverable.pop(name))
        elif failed:  # reconcileResources, after the major upgrade's own Jobs
            self._register_unrecoverable(status, f"Instance creation failed for the following jobs: "
                                                 f"{', '.join(failed)}. Check the job logs to investigate the "
                                                 "cause of the failure.")
        elif running := [j for j in jobs if not int((j.get("status") or {}).get("succeeded") or 0)]:
            for job in running:  # "A job is currently running. Waiting"; the Job controller runs it
                self._run_job_pod(namespace, job)
        elif status["phase"] == "Setting up primary" and name in self.crashlooping:
            self._crash(pods[names[0]])
        elif status["phase"] == "Setting up primary":
            self._ready(pods[names[0]])
            status.update(phase="Creating a new replica" if len(names) > 1 else "Cluster in healthy state",
                          currentPrimary=names[0], readyInstances=1)
        elif status["phase"] in ("Creating a new replica", "Waiting for the instances to become active"):
            for found in pods.values():
                self._ready(found)
            status.update(phase="Cluster in healthy state", readyInstances=len(pods))
        elif status["phase"] == "Failing over":
            if status["targetPrimary"] == "pending":
                old = status["currentPrimary"]
                new = next(n for n in names if n != old)
                status.update(targetPrimary=new, phaseReason=f"Failing over from {old} to {new}")
            else:
                self._promote(pods, status["targetPrimary"])
                status.update(currentPrimary=status["targetPrimary"],
                              phase="Waiting for the instances to become active")
        elif status["phase"] == "Primary instance is being restarted in-place":  # its instance manager restarts it
            status.update(phase="Cluster in healthy state", phaseReason="")
        elif status["phase"] == "Switchover in progress":
            self._promote(pods, status["targetPrimary"])
            status.update(currentPrimary=status["targetPrimary"], phase="Cluster in healthy state", phaseReason="")
        if status["phase"] == "Cluster in healthy state":
            broken = cluster["metadata"]["name"] in self.broken_archiving
            status["conditions"] = [READY, ARCHIVING_FAILING if broken else ARCHIVING]
        cluster["metadata"]["resourceVersion"] = str(int(cluster["metadata"]["resourceVersion"]) + 1)

    @staticmethod
    def _register_unrecoverable(status: dict[str, Any], reason: str) -> None:
        status.update(phase=UNRECOVERABLE, phaseReason=reason)
        status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "Ready"] + [NOT_READY]

    @staticmethod
    def _ready(found: dict[str, Any]) -> None:
        found["status"]["conditions"] = [{"type": "Ready", "status": "True"}]

    @staticmethod
    def _promote(pods: dict[str, dict[str, Any]], primary: str) -> None:
        for name, found in pods.items():
            found["metadata"]["labels"]["cnpg.io/instanceRole"] = "primary" if name == primary else "replica"
