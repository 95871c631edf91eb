"""Realistic Azure Monitor common-schema alerts (the shapes of docs' samples): a Managed Prometheus rule
from CNPG's sample PrometheusRule, a platform metric alert, a log search alert; and helpers that make
a copy for another alert id, cluster or condition."""

from __future__ import annotations

import copy
from typing import Any

PROMETHEUS = {
    "schemaId": "azureMonitorCommonAlertSchema",
    "data": {
        "essentials": {
            "alertId": "/subscriptions/0000/providers/Microsoft.AlertsManagement/alerts/1a2b",
            "alertRule": "CNPGClusterOffline",
            "severity": "Sev1",
            "signalType": "Metric",
            "monitorCondition": "Fired",
            "monitoringService": "Prometheus",
            "alertTargetIDs": ["/subscriptions/0000/resourcegroups/rg/providers/microsoft.monitor/accounts/amw"],
            "configurationItems": ["amw"],
            "firedDateTime": "2026-11-26T03:00:00.000Z",
        },
        "alertContext": {
            "interval": "PT1M",
            "expression": "(count(cnpg_collector_up{cluster=\"pg-primary\"}) OR on() vector(0)) == 0",
            "expressionValue": "0",
            "labels": {"alertname": "CNPGClusterOffline", "cluster": "pg-primary", "namespace": "cnpg-database"},
        },
    },
}
METRIC = {
    "schemaId": "azureMonitorCommonAlertSchema",
    "data": {
        "essentials": {
            "alertId": "/subscriptions/0000/providers/Microsoft.AlertsManagement/alerts/9f8e",
            "alertRule": "pg-lag",
            "severity": "Sev2",
            "signalType": "Metric",
            "monitorCondition": "Fired",
            "monitoringService": "Platform",
            "alertTargetIDs": ["/subscriptions/0000/resourcegroups/rg/providers/microsoft.containerservice/"
                               "managedclusters/aks-primary"],
            "configurationItems": ["pg-primary"],
            "firedDateTime": "2026-11-26T03:00:00Z",
        },
        "alertContext": {"condition": {"allOf": [{"metricName": "cnpg_pg_replication_lag", "threshold": "30"}]}},
    },
}
LOG = {
    "schemaId": "azureMonitorCommonAlertSchema",
    "data": {
        "essentials": {
            "alertId": "/subscriptions/0000/providers/Microsoft.AlertsManagement/alerts/77aa",
            "alertRule": "barman-backup-failed",
            "severity": "Sev3",
            "signalType": "Log",
            "monitorCondition": "Fired",
            "monitoringService": "Log Alerts V2",
            "configurationItems": ["/subscriptions/0000/resourceGroups/rg/providers/"
                                   "Microsoft.ContainerService/managedClusters/aks-primary"],
            "firedDateTime": "2026-11-26T03:00:00Z",
        },
        "alertContext": {"condition": {"allOf": [{"searchQuery": "ContainerLogV2 | where ..."}]}},
    },
}



def alert(
    base: dict[str, Any], alert_id: str, cluster: str | None = None, namespace: str = "default",
    condition: str = "Fired",
) -> dict[str, Any]:
    """A copy of `base` as another alert: its id, the cluster its labels name, Fired or Resolved."""
    body = copy.deepcopy(base)
    essentials = body["data"]["essentials"]
    essentials["alertId"] = f"/subscriptions/0000/providers/Microsoft.AlertsManagement/alerts/{alert_id}"
    essentials["monitorCondition"] = condition
    if condition == "Resolved":
        essentials["resolvedDateTime"] = "2026-11-26T03:05:00Z"
    if cluster is not None and essentials["monitoringService"] == "Prometheus":
        body["data"]["alertContext"]["labels"].update(cluster=cluster, namespace=namespace)
    elif cluster is not None:  # a metric or log alert names its cluster in configurationItems
        essentials["configurationItems"] = [cluster]
    return body
