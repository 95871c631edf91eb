"""The runbook's Kubernetes objects, rendered from a ClusterSpec (pure functions, no I/O).

Field names and values follow the runbook's YAML (tests compare them field by field). Where pgha
departs from it, it is for one reason each, named where it happens: several clusters share a
namespace (restore clusters sit beside their source), so every object pgha names itself carries the
cluster's name, and the rw/ro Services also select on `cnpg.io/cluster`.
"""

from __future__ import annotations

import base64
from typing import Any

from shared.platforms.aks.config import AksSettings
from shared.spec import ClusterSpec, Volume

CNPG = "postgresql.cnpg.io/v1"
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
OBJECT_STORE_API = "barmancloud.cnpg.io/v1"
RECOVERY_SOURCE = "clusterBackup"
WORKLOAD_IDENTITY = {"azure.workload.identity/use": "true"}
DNS_LABEL = "service.beta.kubernetes.io/azure-dns-label-name"


def meta(name: str, namespace: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, **extra}


RELOAD_LABEL = "cnpg.io/reload"


def app_secret(spec: ClusterSpec, password: str) -> dict[str, Any]:
    """`kubectl create secret generic db-user-pass --from-literal=username=app --from-literal=password=…`."""
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    metadata = meta(spec.bootstrap.secret_name, spec.namespace)
    # CNPG's operator watches only the Secrets it owns or those labelled cnpg.io/reload: with it, a rotated
    # password reaches the owner's role (the instance manager's reconcileUser) without waiting for another event
    metadata["labels"] = {RELOAD_LABEL: "true"}
    return {
        "apiVersion": "v1", "kind": "Secret", "metadata": metadata,
        "type": "Opaque", "data": {"username": b64(spec.bootstrap.owner), "password": b64(password)},
    }


def pod_monitor(spec: ClusterSpec) -> dict[str, Any]:
    """The monitoring.coreos.com PodMonitor, made by pgha: CNPG deprecates making it itself
    (`monitoring.enablePodMonitor`, docs/src/monitoring.md) and asks for this one. Only where that CRD is
    installed (kube-prometheus-stack, as the runbook's)."""
    labels = {"cnpg.io/cluster": spec.name}
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
        "metadata": meta(spec.name, spec.namespace, labels=labels),
        "spec": scrape(labels),
    }


def scrape(labels: dict[str, str]) -> dict[str, Any]:
    """The instances' `metrics` port; each series labelled with its pod's cluster (`cnpg.io/cluster`, which
    prometheus-operator writes `cnpg_io_cluster`), so one set of alert rules serves every cluster."""
    return {"selector": {"matchLabels": labels}, "podTargetLabels": ["cnpg.io/cluster"],
            "podMetricsEndpoints": [{"port": "metrics"}]}


def managed_prometheus_pod_monitor(spec: ClusterSpec) -> dict[str, Any]:
    """Azure Managed Prometheus scrapes through its own PodMonitor group (azmonitoring.coreos.com)."""
    labels = {**WORKLOAD_IDENTITY, "cnpg.io/cluster": spec.name}
    return {
        "apiVersion": "azmonitoring.coreos.com/v1", "kind": "PodMonitor",
        "metadata": meta(f"{spec.name}-metrics-managed-prometheus", spec.namespace, labels=labels),
        "spec": scrape(labels),
    }


def volume(size: Volume, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"size": size.size, "pvcTemplate": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size.size}},
        "storageClassName": size.storage_class, "volumeMode": "Filesystem", **(extra or {}),
    }}


def barman_store(destination: str, server_name: str | None = None) -> dict[str, Any]:
    store: dict[str, Any] = {"destinationPath": destination, "azureCredentials": {"inheritFromAzureAD": True}}
    if server_name:
        store["serverName"] = server_name
    return store


def object_store_name(spec: ClusterSpec) -> str:
    return spec.name


def object_store(spec: ClusterSpec) -> dict[str, Any]:
    """The Barman Cloud plugin's ObjectStore: where this cluster archives (plugin mode)."""
    return {
        "apiVersion": OBJECT_STORE_API, "kind": "ObjectStore",
        "metadata": meta(object_store_name(spec), spec.namespace),
        "spec": {"configuration": barman_store(spec.backup.destination_path),
                 "retentionPolicy": spec.backup.retention_policy},
    }


def recovery_object_store(spec: ClusterSpec) -> dict[str, Any]:
    """The recovery source's ObjectStore, as its deploy made it, for a restore that finds it missing."""
    assert spec.recovery is not None
    return {
        "apiVersion": OBJECT_STORE_API, "kind": "ObjectStore",
        "metadata": meta(spec.recovery.source, spec.namespace),
        "spec": {"configuration": barman_store(spec.recovery.destination_path)},
    }


def cluster(spec: ClusterSpec, aks: AksSettings) -> dict[str, Any]:
    """The Cluster CR: the runbook's, from the spec; a recovery Cluster when `spec.recovery` is set."""
    if not aks.identity_client_id:  # barman-cloud would have no identity: archiving fails once it exists
        raise ValueError("PGHA_AKS_IDENTITY_CLIENT_ID is not set: the Cluster's service account needs the "
                         "workload identity's client id (azure.workload.identity/client-id)")
    if spec.backup.method == "auto":
        raise ValueError("backup.method auto is resolved at deploy (the pre-flight) before a Cluster is rendered")
    annotations = {DNS_LABEL: spec.endpoints.dns_label} if spec.endpoints.dns_label else {}
    body: dict[str, Any] = {
        "inheritedMetadata": {"annotations": annotations, "labels": dict(WORKLOAD_IDENTITY)},
        "instances": spec.instances,
        "startDelay": 30,
        "stopDelay": 30,
    }
    # CNPG's defaults (unsupervised, restart; api/v1/cluster_defaults.go) are left to its webhook, as the
    # runbook's Cluster does; a field pgha stops sending falls back to them (server-side apply drops it)
    if spec.primary_update_strategy != "unsupervised":
        body["primaryUpdateStrategy"] = spec.primary_update_strategy
    if spec.primary_update_method != "restart":
        body["primaryUpdateMethod"] = spec.primary_update_method
    if spec.image_name:
        body["imageName"] = spec.image_name
    if spec.synchronous_replicas and spec.synchronous_method is None:
        body.update(minSyncReplicas=spec.synchronous_replicas, maxSyncReplicas=spec.synchronous_replicas)
    body["replicationSlots"] = {"highAvailability": {"enabled": spec.replication_slots.high_availability},
                                "updateInterval": spec.replication_slots.update_interval}
    if spec.zone_spread:
        body["topologySpreadConstraints"] = [{
            "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"cnpg.io/cluster": spec.name}},
        }]
    if spec.node_selector:
        body["affinity"] = {"nodeSelector": dict(spec.node_selector)}
    if spec.resources is not None:
        amount = {"memory": spec.resources.memory, "cpu": spec.resources.cpu}
        body["resources"] = {"requests": dict(amount), "limits": dict(amount)}  # Guaranteed QoS
    body["bootstrap"] = bootstrap(spec)
    body["storage"] = volume(spec.storage)
    if spec.wal_storage is not None:
        body["walStorage"] = volume(spec.wal_storage)
    postgresql: dict[str, Any] = {"parameters": dict(spec.postgresql.parameters),
                                  "pg_hba": list(spec.postgresql.pg_hba)}
    if spec.synchronous_replicas and spec.synchronous_method is not None:
        postgresql["synchronous"] = {"method": spec.synchronous_method, "number": spec.synchronous_replicas}
    body["postgresql"] = postgresql
    body["serviceAccountTemplate"] = {"metadata": {
        "annotations": {"azure.workload.identity/client-id": aks.identity_client_id},
        "labels": dict(WORKLOAD_IDENTITY),
    }}
    if spec.backup.method == "plugin":
        parameters = {"barmanObjectName": object_store_name(spec)}
        if spec.backup.server_name:  # the plugin's own place for it (the ObjectStore may not say)
            parameters["serverName"] = spec.backup.server_name
        body["plugins"] = [{"name": BARMAN_PLUGIN, "isWALArchiver": True, "parameters": parameters}]
    else:
        body["backup"] = {"barmanObjectStore": barman_store(spec.backup.destination_path, spec.backup.server_name),
                          "retentionPolicy": spec.backup.retention_policy}
    if spec.recovery is not None:
        body["externalClusters"] = [external_cluster(spec)]
    return {"apiVersion": CNPG, "kind": "Cluster", "metadata": meta(spec.name, spec.namespace), "spec": body}


def bootstrap(spec: ClusterSpec) -> dict[str, Any]:
    if spec.recovery is None:
        return {"initdb": {"database": spec.bootstrap.database, "owner": spec.bootstrap.owner,
                           "secret": {"name": spec.bootstrap.secret_name},
                           "dataChecksums": spec.bootstrap.data_checksums}}
    # Always name the Secret: CNPG defaults recovery's database and owner to `app` and, given no Secret, makes
    # `<cluster>-app` with a random password that the primary then sets on the recovered owner
    # (api/v1/cluster_defaults.go defaultRecovery; internal/controller/cluster_create.go reconcileAppUserSecret;
    # instance_controller.go reconcileUser). Named, the owner answers to the password pgha connects with.
    recovery: dict[str, Any] = {"source": RECOVERY_SOURCE, "database": spec.bootstrap.database,
                                "owner": spec.bootstrap.owner,
                                "secret": {"name": spec.recovery.owner_secret or spec.bootstrap.secret_name}}
    target: dict[str, str] = {}
    if spec.recovery.target_time is not None:
        target["targetTime"] = spec.recovery.target_time.isoformat()
    if spec.recovery.target_lsn is not None:
        target["targetLSN"] = spec.recovery.target_lsn
    if target:
        recovery["recoveryTarget"] = target
    return {"recovery": recovery}


def external_cluster(spec: ClusterSpec) -> dict[str, Any]:
    assert spec.recovery is not None
    if spec.backup.method == "plugin":
        # the source's own ObjectStore, in the same namespace
        return {"name": RECOVERY_SOURCE, "plugin": {"name": BARMAN_PLUGIN, "parameters": {
            "barmanObjectName": spec.recovery.source, "serverName": spec.recovery.server_name}}}
    store = barman_store(spec.recovery.destination_path, spec.recovery.server_name)
    return {"name": RECOVERY_SOURCE, "barmanObjectStore": {**store, "wal": {"maxParallel": 8}}}


def backup(spec: ClusterSpec, name: str) -> dict[str, Any]:
    """An on-demand Backup, taken from a standby when one is ready (CNPG's default target)."""
    body: dict[str, Any] = {"method": spec.backup.method, "cluster": {"name": spec.name}}
    if spec.backup.method == "plugin":
        body["pluginConfiguration"] = {"name": BARMAN_PLUGIN}
    return {"apiVersion": CNPG, "kind": "Backup", "metadata": meta(name, spec.namespace), "spec": body}


def scheduled_backup_name(spec: ClusterSpec) -> str:
    return f"{spec.name}-scheduled"


def scheduled_backup(spec: ClusterSpec) -> dict[str, Any]:
    assert spec.backup.schedule is not None
    body: dict[str, Any] = {"schedule": spec.backup.schedule, "backupOwnerReference": "self",
                            "cluster": {"name": spec.name}}
    if spec.backup.method == "plugin":
        body.update(method="plugin", pluginConfiguration={"name": BARMAN_PLUGIN})
    return {"apiVersion": CNPG, "kind": "ScheduledBackup",
            "metadata": meta(scheduled_backup_name(spec), spec.namespace), "spec": body}


def service_name(spec: ClusterSpec, role: str) -> str:
    """`<cluster>-lb-rw|ro`: at most 56 characters for a 50-character cluster name, inside a Service name's
    63 (the runbook's `-load-balancer-rw` would not be)."""
    return f"{spec.name}-lb-{role}"


def legacy_service_name(spec: ClusterSpec, role: str) -> str:
    """What pgha named them before; teardown still removes these."""
    return f"{spec.name}-load-balancer-{role}"


def load_balancer(spec: ClusterSpec, role: str, aks: AksSettings) -> dict[str, Any]:
    """rw on 5432 (the primary), ro on 5433 (the replicas), open only to the spec's source ranges.

    With `endpoints.publicIpName` both share that static IP (the runbook's way) and its DNS label is set
    once, on rw: cloud-provider-azure keeps one label per public IP. Without it each Service gets an IP
    of its own, so clusters never compete for one IP's ports, and ro's label is `<label>-ro`."""
    annotations: dict[str, str] = {}
    if aks.node_resource_group:
        annotations["service.beta.kubernetes.io/azure-load-balancer-resource-group"] = aks.node_resource_group
    shared_ip = spec.endpoints.public_ip_name
    if shared_ip:
        annotations["service.beta.kubernetes.io/azure-pip-name"] = shared_ip
    if spec.endpoints.dns_label and (role == "rw" or not shared_ip):
        annotations[DNS_LABEL] = spec.endpoints.dns_label + ("" if role == "rw" else "-ro")
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta(service_name(spec, role), spec.namespace, annotations=annotations),
        "spec": {
            "type": "LoadBalancer",
            "ports": [{"protocol": "TCP", "port": 5432 if role == "rw" else 5433, "targetPort": 5432}],
            "selector": {"cnpg.io/cluster": spec.name,
                         "cnpg.io/instanceRole": "primary" if role == "rw" else "replica",
                         "cnpg.io/podRole": "instance"},
            "loadBalancerSourceRanges": list(spec.endpoints.source_ranges),
        },
    }


def deploy_objects(spec: ClusterSpec, aks: AksSettings) -> list[dict[str, Any]]:
    """Everything deploy_cluster applies, in its order (the Secret's password stays `<generated>`)."""
    objects = [app_secret(spec, "<generated>")]
    if spec.monitoring.enable_pod_monitor:
        objects += [pod_monitor(spec), managed_prometheus_pod_monitor(spec)]
    if spec.backup.method == "plugin":
        objects.append(object_store(spec))
    objects.append(cluster(spec, aks))
    if spec.endpoints.enabled:
        objects += [load_balancer(spec, "rw", aks), load_balancer(spec, "ro", aks)]
    if spec.backup.schedule:
        objects.append(scheduled_backup(spec))
    return objects
