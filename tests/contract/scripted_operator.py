"""ScriptedOperator: a test double of CloudNativePG's controller, on FakeKubeApi's hooks.

It advances objects the way the operator documents: a new Cluster gets pods, PVCs and its PodMonitor,
then goes "Setting up primary" → "Creating a new replica" → "Cluster in healthy state" over the next
reads; a switchover (status.targetPrimary) moves the primary role; a deleted primary pod is a failover
("Failing over", targetPrimary "pending", then a new primary) and the pod comes back as a replica; a
Backup goes running → completed; a deleted Cluster takes its pods, PVCs and PodMonitor with it.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.contract.fake_kube import FakeKubeApi

CNPG = "/apis/postgresql.cnpg.io/v1/namespaces"
READY = {"type": "Ready", "status": "True", "reason": "ClusterIsReady", "message": "Cluster is Ready"}
ARCHIVING = {"type": "ContinuousArchiving", "status": "True", "reason": "ContinuousArchivingSuccess",
             "message": "Continuous archiving is working"}


def pod(namespace: str, cluster: str, name: str, role: str, ready: bool, zone: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": {
        "cnpg.io/cluster": cluster, "cnpg.io/podRole": "instance", "cnpg.io/instanceRole": role,
        "cnpg.io/instanceName": name}}, "spec": {"nodeName": f"aks-postgres-{zone}"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


class ScriptedOperator:
    def __init__(self, api: FakeKubeApi, zones: int = 3) -> None:
        self.api = api
        api.on_write.append(self.written)
        api.on_read.append(self.read)
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
            obj["status"] = {"phase": "running", "method": obj["spec"].get("method", "barmanObjectStore")}

    def _cluster_created(self, namespace: str, name: str, cluster: dict[str, Any]) -> None:
        count = int(cluster["spec"]["instances"])
        names = [f"{name}-{n}" for n in range(1, count + 1)]
        for n, pod_name in enumerate(names, start=1):
            self.api.objects[f"/api/v1/namespaces/{namespace}/pods/{pod_name}"] = pod(
                namespace, name, pod_name, "primary" if n == 1 else "replica", False, (n - 1) % 3 + 1)
            self.api.objects[f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{pod_name}"] = {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": pod_name, "namespace": namespace, "labels": {"cnpg.io/cluster": name}}}
        if (cluster["spec"].get("monitoring") or {}).get("enablePodMonitor"):
            self.api.objects[f"/apis/monitoring.coreos.com/v1/namespaces/{namespace}/podmonitors/{name}"] = {
                "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
                "metadata": {"name": name, "namespace": namespace}}
        cluster["status"] = {"phase": "Setting up primary", "instances": count, "readyInstances": 0,
                             "instanceNames": names, "targetPrimary": names[0], "conditions": []}

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
        recreated["metadata"]["labels"]["cnpg.io/instanceRole"] = "replica"
        recreated["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
        self.api.objects[f"/api/v1/namespaces/{namespace}/pods/{name}"] = recreated  # the StatefulSet's way

    # ---- reads: one step of reconciliation each --------------------------------------------------
    def read(self, api: FakeKubeApi, path: str) -> None:
        parts = path.strip("/").split("/")
        if "/clusters/" in path and len(parts) == 7 and path in api.objects:
            self._reconcile(parts[4], api.objects[path])
        elif "/backups/" in path and path in api.objects:
            backup = api.objects[path]
            if (backup.get("status") or {}).get("phase") == "running":
                standby = f"{backup['spec']['cluster']['name']}-2"
                backup["status"].update(phase="completed", backupId="20261126T030000", beginWal="0" * 23 + "3",
                                        endWal="0" * 23 + "3", instanceID={"podName": standby},
                                        startedAt="2026-11-26T03:00:00Z", stoppedAt="2026-11-26T03:00:09Z")

    def _pods(self, namespace: str, names: list[str]) -> dict[str, dict[str, Any]]:
        return {n: self.api.objects[f"/api/v1/namespaces/{namespace}/pods/{n}"] for n in names
                if f"/api/v1/namespaces/{namespace}/pods/{n}" in self.api.objects}

    def _reconcile(self, namespace: str, cluster: dict[str, Any]) -> None:
        status = cluster["status"]
        names = status["instanceNames"]
        pods = self._pods(namespace, names)
        if status["phase"] == "Setting up primary":
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
        elif status["phase"] == "Switchover in progress":
            self._promote(pods, status["targetPrimary"])
            status.update(currentPrimary=status["targetPrimary"], phase="Cluster in healthy state", phaseReason="")
        if status["phase"] == "Cluster in healthy state":
            status["conditions"] = [READY, ARCHIVING]
        cluster["metadata"]["resourceVersion"] = str(int(cluster["metadata"]["resourceVersion"]) + 1)

    @staticmethod
    def _ready(found: dict[str, Any]) -> None:
        found["status"]["conditions"] = [{"type": "Ready", "status": "True"}]

    @staticmethod
    def _promote(pods: dict[str, dict[str, Any]], primary: str) -> None:
        for name, found in pods.items():
            found["metadata"]["labels"]["cnpg.io/instanceRole"] = "primary" if name == primary else "replica"
