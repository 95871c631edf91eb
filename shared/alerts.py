"""Azure Monitor's common alert schema, parsed and mapped to a cluster and a playbook.

Pure functions: the alert webhook (issue 4's second half) validates with `parse_alert`, deduplicates
on `dedupe_key` (alertId + monitorCondition) and picks the runbook with `playbook_for`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA_ID = "azureMonitorCommonAlertSchema"
REQUIRED = ("alertId", "alertRule", "severity", "signalType", "monitorCondition", "monitoringService",
            "firedDateTime")
Playbook = Literal["primaryUnavailable", "replicationLag", "walArchivingFailing", "backupStale", "unknown"]
# CNPG's sample PrometheusRule names and the words its expressions use, most specific first
PLAYBOOK_WORDS: list[tuple[Playbook, re.Pattern[str]]] = [
    ("walArchivingFailing", re.compile(r"archiv", re.IGNORECASE)),
    ("backupStale", re.compile(r"backup", re.IGNORECASE)),
    ("replicationLag", re.compile(r"lag|replica_?delay|streaming_replicas", re.IGNORECASE)),
    ("primaryUnavailable", re.compile(r"offline|primary|pg_up|cnpg_collector_up|unavailable|\bdown\b",
                                      re.IGNORECASE)),
]


class AlertError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Alert:
    alert_id: str
    rule: str
    severity: str
    signal_type: str
    condition: Literal["Fired", "Resolved"]
    monitoring_service: str
    fired_at: str
    resolved_at: str | None
    target_ids: list[str] = field(default_factory=list)
    configuration_items: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    expression: str | None = None
    value: str | None = None
    metrics: list[str] = field(default_factory=list)


def _text(essentials: dict[str, Any], name: str) -> str:
    value = essentials.get(name)
    if not isinstance(value, str) or not value.strip():
        raise AlertError(f"data.essentials.{name}", "is required and must be a non-empty string")
    return value


def parse_alert(body: object) -> Alert:
    """Validate a common-schema alert; AlertError names the first thing wrong."""
    if not isinstance(body, dict):
        raise AlertError("body", "must be a JSON object")
    if body.get("schemaId") != SCHEMA_ID:
        raise AlertError("schemaId", f"must be {SCHEMA_ID!r}, got {body.get('schemaId')!r}")
    data = body.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("essentials"), dict):
        raise AlertError("data.essentials", "is required")
    essentials: dict[str, Any] = data["essentials"]
    values = {name: _text(essentials, name) for name in REQUIRED}
    if values["monitorCondition"] not in ("Fired", "Resolved"):
        raise AlertError("data.essentials.monitorCondition", "must be Fired or Resolved")
    context = data.get("alertContext") if isinstance(data.get("alertContext"), dict) else {}
    labels = context.get("labels") if isinstance(context.get("labels"), dict) else {}
    metrics = []
    condition = context.get("condition") if isinstance(context.get("condition"), dict) else {}
    for criterion in condition.get("allOf", []) if isinstance(condition.get("allOf"), list) else []:
        if isinstance(criterion, dict) and isinstance(criterion.get("metricName"), str):
            metrics.append(criterion["metricName"])
    return Alert(
        alert_id=values["alertId"], rule=values["alertRule"], severity=values["severity"],
        signal_type=values["signalType"], condition=values["monitorCondition"],  # type: ignore[arg-type]
        monitoring_service=values["monitoringService"], fired_at=values["firedDateTime"],
        resolved_at=essentials.get("resolvedDateTime"),
        target_ids=[t for t in essentials.get("alertTargetIDs") or [] if isinstance(t, str)],
        configuration_items=[c for c in essentials.get("configurationItems") or [] if isinstance(c, str)],
        labels={str(k): str(v) for k, v in labels.items()},
        expression=context.get("expression") if isinstance(context.get("expression"), str) else None,
        value=str(context["expressionValue"]) if "expressionValue" in context else None,
        metrics=metrics,
    )


def dedupe_key(alert: Alert) -> str:
    """One run per alertId and condition: a replayed delivery maps to the same URL-safe key."""
    digest = hashlib.sha256(f"{alert.alert_id}\n{alert.condition}".encode()).hexdigest()[:24]
    return f"alert-{alert.condition.lower()}-{digest}"


def playbook_for(alert: Alert) -> Playbook:
    words = " ".join([alert.labels.get("alertname", ""), alert.rule, alert.expression or "", *alert.metrics])
    return next((name for name, pattern in PLAYBOOK_WORDS if pattern.search(words)), "unknown")


NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


def _valid(value: str | None, limit: int) -> str | None:
    return value if value and len(value) <= limit and NAME.fullmatch(value) else None


def cluster_for(alert: Alert, default_namespace: str) -> tuple[str, str] | None:
    """(namespace, cluster) from the alert's labels, else its configuration items; None when nothing names
    a valid cluster.

    CNPG's pods carry `cnpg.io/cluster` (a `cnpg_io_cluster` series label when kept) and are named
    `<cluster>-<n>`; Azure Managed Prometheus stamps `cluster` with the AKS cluster's own name, so that
    label is the last resort, not the first."""
    labels = alert.labels
    namespace = _valid(labels.get("namespace"), 63) or default_namespace
    pod = re.fullmatch(r"(.+)-[0-9]+", labels.get("pod", ""))
    for candidate in (labels.get("cnpg_io_cluster"), pod.group(1) if pod else None, labels.get("cluster")):
        name = _valid(candidate, 50)
        if name:
            return namespace, name
    for item in alert.configuration_items:
        name = _valid(item.rsplit("/", 1)[-1].lower(), 50)
        if name:
            return default_namespace, name
    return None
