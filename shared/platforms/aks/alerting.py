"""What calls pgha when a CNPG cluster on AKS goes wrong, as resources: the Azure Monitor managed
Prometheus rule group and the action group whose webhook is pgha's `/api/alerts`; and, for operators who
run kube-prometheus-stack as the runbook does, a PrometheusRule and an AlertmanagerConfig.

Shapes: Azure's resource-manager schemas (Microsoft.AlertsManagement/prometheusRuleGroups 2023-03-01,
Microsoft.Insights/actionGroups 2023-01-01), prometheus-operator's CRDs (monitoring.coreos.com
PrometheusRule v1, AlertmanagerConfig v1alpha1); the tests validate every one against them. The function
key rides in the webhook's URL (`?code=`; neither Azure Monitor nor Alertmanager 0.25 sends a header of
ours) and is rendered only when given: a plan shows `HIDDEN` in its place.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.alert_rules import BY_CLUSTER, AlertRule, Pace
from shared.platforms.aks.alert_rules import aks_rules
from shared.platforms.aks.config import AksSettings

RULE_GROUP_API = "2023-03-01"
ACTION_GROUP_API = "2023-01-01"
WORKSPACE_API = "2023-04-03"  # Microsoft.Monitor/accounts: read for its region
RULE_GROUP = "pgha-cnpg-alerts"
ACTION_GROUP = "pgha-alerts"
HIDDEN = "<the function key: never printed>"
# Azure Monitor's severities: Sev0 critical, Sev2 warning (0 to 4)
SEVERITY = {"critical": 0, "warning": 2}
PROMETHEUS_RULE = "pgha-alert-rules"
WEBHOOK_SECRET = "pgha-alerts-webhook"


def iso_duration(seconds: int) -> str:
    """ARM's ISO 8601 durations (`PT5M`); Prometheus' own are `5m`."""
    return f"PT{seconds // 60}M" if seconds % 60 == 0 else f"PT{seconds}S"


def webhook_url(alerts_url: str, key: str | None) -> str:
    return f"{alerts_url}?code={quote(key, safe='') if key else HIDDEN}"


def resource_group_id(aks: AksSettings) -> str:
    return f"/subscriptions/{aks.subscription_id}/resourceGroups/{aks.resource_group}"


def action_group_id(aks: AksSettings) -> str:
    """The configured action group, else the one `action_group` renders, in the AKS cluster's group."""
    return aks.action_group_id or (
        f"{resource_group_id(aks)}/providers/Microsoft.Insights/actionGroups/{ACTION_GROUP}")


def apply_alert_rules(aks: AksSettings, azure: Any, kube: Any, prometheus_rules: bool, pace: Pace) -> str:
    """The rule group every cluster shares (made again by each deploy: a PUT is idempotent), in its
    workspace's region; the PrometheusRule where kube-prometheus-stack serves the CRD."""
    location = azure.location_of(aks.monitor_workspace_id, WORKSPACE_API)
    azure.put_resource(aks_rule_group(aks, location, pace), rule_group_id(aks))
    group = action_group_id(aks).rsplit("/", 1)[-1]
    made = [f"rule group {RULE_GROUP} ({len(aks_rules(pace))} rules, calling {group})"]
    if prometheus_rules:
        kube.apply(prometheus_rule(aks.operator_namespace, pace))
        made.append(f"PrometheusRule {aks.operator_namespace}/{PROMETHEUS_RULE}")
    return "alert rules applied: " + ", ".join(made)


def rule_group_id(aks: AksSettings) -> str:
    return f"{resource_group_id(aks)}/providers/Microsoft.AlertsManagement/prometheusRuleGroups/{RULE_GROUP}"


def azure_rule(rule: AlertRule, pace: Pace, action_group: str) -> dict[str, Any]:
    """One rule as Azure Monitor holds it: the `playbook` label rides to pgha in the common alert schema's
    alertContext.labels; the alert resolves itself once its expression stops holding."""
    held = pace.hold(rule.for_seconds)
    return {
        "alert": rule.alert, "expression": rule.expr, **({"for": iso_duration(held)} if held else {}),
        "severity": SEVERITY[rule.severity], "enabled": True,
        "labels": {"severity": rule.severity, "playbook": rule.playbook},
        "annotations": {"summary": rule.summary, "description": rule.description},
        "resolveConfiguration": {"autoResolved": True, "timeToResolve": "PT10M"},
        "actions": [{"actionGroupId": action_group}],
    }


def rule_group(scopes: list[str], cluster_name: str, location: str, action_group: str, pace: Pace) -> dict[str, Any]:
    """The rule group, scoped to the Azure Monitor workspace (where the series are) and the AKS cluster
    (whose name Managed Prometheus stamps on them as `cluster`), each rule calling the action group."""
    return {
        "type": "Microsoft.AlertsManagement/prometheusRuleGroups", "apiVersion": RULE_GROUP_API,
        "name": RULE_GROUP, "location": location,
        "properties": {
            "description": "CloudNativePG's recommended alerts and pgha's playbook alerts, answered by pgha",
            "scopes": scopes, "clusterName": cluster_name, "enabled": True,
            "interval": iso_duration(max(60, pace.evaluation_seconds)),
            "rules": [azure_rule(rule, pace, action_group) for rule in aks_rules(pace)],
        },
    }


def aks_rule_group(aks: AksSettings, location: str, pace: Pace) -> dict[str, Any]:
    return rule_group([aks.monitor_workspace_id, aks.cluster_id], aks.cluster, location, action_group_id(aks), pace)


def action_group(alerts_url: str, key: str | None) -> dict[str, Any]:
    """pgha's action group: one webhook, in the common alert schema pgha parses."""
    return {
        "type": "Microsoft.Insights/actionGroups", "apiVersion": ACTION_GROUP_API, "name": ACTION_GROUP,
        "location": "Global",
        "properties": {"groupShortName": "pgha", "enabled": True, "webhookReceivers": [
            {"name": "pgha", "serviceUri": webhook_url(alerts_url, key), "useCommonAlertSchema": True}]},
    }


def prometheus_rule(namespace: str, pace: Pace) -> dict[str, Any]:
    """The same rules for kube-prometheus-stack's Prometheus. Its default `ruleSelector` picks rules
    labelled with the Helm release (`release: <name>`): add that label, or set the selector to `{}`."""
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": {"name": PROMETHEUS_RULE, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "pgha"}},
        "spec": {"groups": [{"name": "pgha", "interval": f"{pace.evaluation_seconds}s",
                             "rules": [rule.prometheus(pace) for rule in aks_rules(pace)]}]},
    }


def alertmanager_config(namespace: str, pace: Pace) -> dict[str, Any]:
    """Alertmanager's route to pgha. prometheus-operator confines an AlertmanagerConfig to the alerts of
    its own namespace (`alertmanagerConfigMatcherStrategy: OnNamespace`, the default): one per namespace
    that holds clusters. The URL, key and all, is read from a Secret (`webhook_secret`)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "AlertmanagerConfig",
        "metadata": {"name": "pgha", "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "pgha"}},
        "spec": {
            "route": {
                "receiver": "pgha", "groupBy": [*BY_CLUSTER.split(", "), "alertname"],
                "groupWait": f"{pace.group_wait_seconds}s", "groupInterval": f"{pace.group_interval_seconds}s",
                "repeatInterval": f"{pace.repeat_interval_seconds // 3600}h",
                "matchers": [{"name": "playbook", "value": "", "matchType": "!="}],
            },
            "receivers": [{"name": "pgha", "webhookConfigs": [
                {"urlSecret": {"name": WEBHOOK_SECRET, "key": "url"}, "sendResolved": True}]}],
        },
    }


def webhook_secret(namespace: str, alerts_url: str, key: str | None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": WEBHOOK_SECRET, "namespace": namespace},
            "stringData": {"url": webhook_url(alerts_url, key)}}
