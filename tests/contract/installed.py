"""What an AKS cluster set up as docs/azure.md says has installed, put into FakeKubeApi: the CRDs, CNPG's
operator Deployment and the Barman Cloud plugin's Service — each as its release manifest makes it.

- CNPG's operator: Deployment `cnpg-system/cnpg-controller-manager`, container `manager`, image
  `ghcr.io/cloudnative-pg/cloudnative-pg:<version>` (cloudnative-pg releases/cnpg-1.30.0.yaml);
- the plugin: Service `cnpg-system/barman-cloud` labelled `cnpg.io/pluginName:
  barman-cloud.cloudnative-pg.io` (plugin-barman-cloud v0.14.0 kubernetes/service.yaml), CRD
  objectstores.barmancloud.cnpg.io;
- PodMonitor CRDs: monitoring.coreos.com only with kube-prometheus-stack (the runbook's Prometheus);
  azmonitoring.coreos.com with Azure Managed Prometheus (the ama-metrics add-on).
- AKS's built-in StorageClasses for Azure Disks, `managed-csi` (the default) and `managed-csi-premium`, with
  allowVolumeExpansion (learn.microsoft.com/azure/aks/create-volume-azure-disk, `kubectl get sc`).
A test leaves out what it wants missing.

`pgha_role` is the RBAC pgha's identity is given: exactly the rows of shared/platforms/aks/access.py, so a call
the adapter makes that the table (and so the doctor and docs/azure.md) misses is refused 403.
"""

from __future__ import annotations

from shared.platforms.aks.access import PERMISSIONS, Permission, allows, needed_by
from tests.contract.fake_kube import Attributes, Authorizer, FakeKubeApi

CNPG_CRDS = ("clusters", "backups", "scheduledbackups")
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def crd(api: FakeKubeApi, name: str) -> None:
    plural, _, group = name.partition(".")
    api.put(f"{CRD_PATH}/{name}", {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name},
        "spec": {"group": group, "names": {"plural": plural}, "scope": "Namespaced"}})


def install(api: FakeKubeApi, version: str = "1.30.0", plugin: bool = True, kube_prometheus: bool = True,
            managed_prometheus: bool = True, image: str | None = None) -> None:
    for plural in CNPG_CRDS:
        crd(api, f"{plural}.postgresql.cnpg.io")
    api.put("/apis/apps/v1/namespaces/cnpg-system/deployments/cnpg-controller-manager", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "cnpg-controller-manager", "namespace": "cnpg-system",
                     "labels": {"app.kubernetes.io/name": "cloudnative-pg"}},
        "spec": {"template": {"spec": {"containers": [
            {"name": "manager", "image": image or f"ghcr.io/cloudnative-pg/cloudnative-pg:{version}"}]}}},
        "status": {"availableReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}})
    if plugin:
        crd(api, "objectstores.barmancloud.cnpg.io")
        api.put("/api/v1/namespaces/cnpg-system/services/barman-cloud", {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "barman-cloud", "namespace": "cnpg-system",
                         "labels": {"app": "barman-cloud", "cnpg.io/pluginName": "barman-cloud.cloudnative-pg.io"}},
            "spec": {"ports": [{"port": 9090, "protocol": "TCP", "targetPort": 9090}],
                     "selector": {"app": "barman-cloud"}}})
    for name in ("managed-csi", "managed-csi-premium"):
        api.put(f"/apis/storage.k8s.io/v1/storageclasses/{name}", {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
            "provisioner": "disk.csi.azure.com", "allowVolumeExpansion": True, "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
            "parameters": {"skuname": "Premium_LRS" if name.endswith("premium") else "StandardSSD_LRS"}})
    if kube_prometheus:  # kube-prometheus-stack installs prometheus-operator's CRDs together
        for plural in ("podmonitors", "prometheusrules", "alertmanagerconfigs"):
            crd(api, f"{plural}.monitoring.coreos.com")
    if managed_prometheus:
        crd(api, "podmonitors.azmonitoring.coreos.com")


def pgha_role(operator_namespace: str = "cnpg-system", without: tuple[Permission, ...] = (),
              only: str | None = None) -> Authorizer:
    """A ClusterRole of pgha's table bound to the caller: every row, or `only` the rows one runbook is listed
    for (so a runbook that uses more than its rows say is refused); less `without`, for a test that takes
    one away."""
    granted = [p for p in (needed_by(only) if only else PERMISSIONS) if p not in without]

    def decide(asked: Attributes) -> bool:
        return any(allows(p, asked.group, asked.resource, asked.verb, asked.namespace, operator_namespace)
                   for p in granted)

    return decide
