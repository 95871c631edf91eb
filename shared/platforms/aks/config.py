"""What the `aks` adapter needs to know about its Azure and AKS surroundings, from app settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

AKS_SETTINGS_DOC: dict[str, str] = {
    "PGHA_AKS_SUBSCRIPTION_ID": "aks: the subscription of the AKS cluster and the workload identity",
    "PGHA_AKS_RESOURCE_GROUP": "aks: the AKS cluster's resource group",
    "PGHA_AKS_CLUSTER": "aks: the AKS cluster's name (its user kubeconfig is fetched with an Azure AD token)",
    "PGHA_KUBECONFIG": "aks: a kubeconfig file to use instead of fetching one from AKS; `in-cluster` for the "
    "pod's service account",
    "PGHA_AKS_NODE_RESOURCE_GROUP": "aks: the node resource group, where the public IP of the rw/ro "
    "LoadBalancers lives",
    "PGHA_AKS_PUBLIC_IP_NAME": "aks: the static public IP the rw/ro LoadBalancers use (optional)",
    "PGHA_AKS_IDENTITY_NAME": "aks: the user-assigned managed identity the clusters' service accounts federate with",
    "PGHA_AKS_IDENTITY_RESOURCE_GROUP": "aks: that identity's resource group (default: PGHA_AKS_RESOURCE_GROUP)",
    "PGHA_AKS_IDENTITY_CLIENT_ID": "aks: that identity's client id (azure.workload.identity/client-id)",
    "PGHA_CNPG_NAMESPACE": "aks: the CNPG operator's namespace",
    "PGHA_CNPG_DEPLOYMENT": "aks: the CNPG operator's deployment",
    "PGHA_SQL_ACCESS": "aks: how checks and probes reach PostgreSQL: `serviceDns` (in-cluster "
    "<cluster>-rw.<namespace>.svc) or `loadBalancer` (the rw/ro LoadBalancer IPs)",
    "PGHA_PROMETHEUS_ENDPOINT": "aks: the Azure Monitor workspace's Prometheus query endpoint",
    "PGHA_LOG_ANALYTICS_WORKSPACE_ID": "aks: the Log Analytics workspace id for container logs",
    "PGHA_ARM_ENDPOINT": "aks: Azure Resource Manager's endpoint (sovereign clouds)",
    "PGHA_CA_BUNDLE": "aks: a CA bundle the Azure clients verify TLS with (a proxy's, or a test's)",
}


@dataclass(frozen=True)
class AksSettings:
    subscription_id: str = ""
    resource_group: str = ""
    cluster: str = ""
    kubeconfig: str = ""
    node_resource_group: str = ""
    public_ip_name: str = ""
    identity_name: str = ""
    identity_resource_group: str = ""
    identity_client_id: str = ""
    operator_namespace: str = "cnpg-system"
    operator_deployment: str = "cnpg-controller-manager"
    sql_access: Literal["serviceDns", "loadBalancer"] = "serviceDns"
    prometheus_endpoint: str = ""
    log_workspace_id: str = ""
    arm_endpoint: str = "https://management.azure.com"
    ca_bundle: str = ""

    @classmethod
    def from_env(cls) -> AksSettings:
        env = os.environ
        access = env.get("PGHA_SQL_ACCESS", "serviceDns")
        if access not in ("serviceDns", "loadBalancer"):
            raise ValueError(f"setting PGHA_SQL_ACCESS must be serviceDns or loadBalancer, got {access!r}")
        resource_group = env.get("PGHA_AKS_RESOURCE_GROUP", "")
        return cls(
            subscription_id=env.get("PGHA_AKS_SUBSCRIPTION_ID", ""),
            resource_group=resource_group,
            cluster=env.get("PGHA_AKS_CLUSTER", ""),
            kubeconfig=env.get("PGHA_KUBECONFIG", ""),
            node_resource_group=env.get("PGHA_AKS_NODE_RESOURCE_GROUP", ""),
            public_ip_name=env.get("PGHA_AKS_PUBLIC_IP_NAME", ""),
            identity_name=env.get("PGHA_AKS_IDENTITY_NAME", ""),
            identity_resource_group=env.get("PGHA_AKS_IDENTITY_RESOURCE_GROUP", "") or resource_group,
            identity_client_id=env.get("PGHA_AKS_IDENTITY_CLIENT_ID", ""),
            operator_namespace=env.get("PGHA_CNPG_NAMESPACE", "cnpg-system"),
            operator_deployment=env.get("PGHA_CNPG_DEPLOYMENT", "cnpg-controller-manager"),
            sql_access=access,  # type: ignore[arg-type]
            prometheus_endpoint=env.get("PGHA_PROMETHEUS_ENDPOINT", ""),
            log_workspace_id=env.get("PGHA_LOG_ANALYTICS_WORKSPACE_ID", ""),
            arm_endpoint=env.get("PGHA_ARM_ENDPOINT", "https://management.azure.com").rstrip("/"),
            ca_bundle=env.get("PGHA_CA_BUNDLE", ""),
        )
