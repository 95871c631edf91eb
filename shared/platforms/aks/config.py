"""What the `aks` adapter needs to know about its Azure and AKS surroundings, from app settings."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class AksSettings:
    subscription_id: str = ""
    resource_group: str = ""
    cluster: str = ""
    kubeconfig: str = ""
    node_resource_group: str = ""
    identity_name: str = ""
    identity_resource_group: str = ""
    identity_client_id: str = ""
    operator_namespace: str = "cnpg-system"
    operator_deployment: str = "cnpg-controller-manager"
    sql_access: Literal["serviceDns", "loadBalancer"] = "serviceDns"
    prometheus_endpoint: str = ""
    log_workspace_id: str = ""
    log_analytics_endpoint: str = "https://api.loganalytics.io"
    arm_endpoint: str = "https://management.azure.com"
    ca_bundle: str = ""
    outbound_addresses: tuple[str, ...] = ()  # pgha's own outbound IPs, for the doctor's sourceRanges check
    monitoring_apply: bool = False  # each deploy applies the alert rules every cluster shares
    monitor_workspace_id: str = ""  # the Azure Monitor workspace's resource id: the rule groups' scope
    action_group_id: str = ""  # the action group whose webhook calls pgha's /api/alerts
    alerts_url: str = ""  # pgha's own /api/alerts, without its key

    @classmethod
    def from_env(cls) -> AksSettings:
        env = os.environ
        access = env.get("PGHA_SQL_ACCESS", "serviceDns")
        if access not in ("serviceDns", "loadBalancer"):
            raise ValueError(f"setting PGHA_SQL_ACCESS must be serviceDns or loadBalancer, got {access!r}")
        resource_group = env.get("PGHA_AKS_RESOURCE_GROUP", "")
        outbound = tuple(a.strip() for a in env.get("PGHA_OUTBOUND_ADDRESSES", "").split(",") if a.strip())
        for address in outbound:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"setting PGHA_OUTBOUND_ADDRESSES: {address!r} is not an IP address") from None
        apply = env.get("PGHA_MONITORING_APPLY", "false").lower()
        if apply not in ("true", "false"):
            raise ValueError(f"setting PGHA_MONITORING_APPLY must be true or false, got {apply!r}")
        return cls(
            subscription_id=env.get("PGHA_AKS_SUBSCRIPTION_ID", ""),
            resource_group=resource_group,
            cluster=env.get("PGHA_AKS_CLUSTER", ""),
            kubeconfig=env.get("PGHA_KUBECONFIG", ""),
            node_resource_group=env.get("PGHA_AKS_NODE_RESOURCE_GROUP", ""),
            identity_name=env.get("PGHA_AKS_IDENTITY_NAME", ""),
            identity_resource_group=env.get("PGHA_AKS_IDENTITY_RESOURCE_GROUP", "") or resource_group,
            identity_client_id=env.get("PGHA_AKS_IDENTITY_CLIENT_ID", ""),
            operator_namespace=env.get("PGHA_CNPG_NAMESPACE", "cnpg-system"),
            operator_deployment=env.get("PGHA_CNPG_DEPLOYMENT", "cnpg-controller-manager"),
            sql_access=access,  # type: ignore[arg-type]
            prometheus_endpoint=env.get("PGHA_PROMETHEUS_ENDPOINT", ""),
            log_workspace_id=env.get("PGHA_LOG_ANALYTICS_WORKSPACE_ID", ""),
            log_analytics_endpoint=env.get("PGHA_LOG_ANALYTICS_ENDPOINT", "https://api.loganalytics.io").rstrip("/"),
            arm_endpoint=env.get("PGHA_ARM_ENDPOINT", "https://management.azure.com").rstrip("/"),
            ca_bundle=env.get("PGHA_CA_BUNDLE", ""),
            outbound_addresses=outbound,
            monitoring_apply=apply == "true",
            monitor_workspace_id=env.get("PGHA_MONITOR_WORKSPACE_ID", ""),
            action_group_id=env.get("PGHA_ACTION_GROUP_ID", ""),
            alerts_url=env.get("PGHA_ALERTS_URL", ""),
        )

    @property
    def cluster_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.ContainerService/managedClusters/{self.cluster}")
