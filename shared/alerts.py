"""The alerts pgha answers, parsed and mapped to a cluster and a playbook: Azure Monitor's common alert
schema (an action group's webhook) and Alertmanager's webhook (version 4, a group of alerts).

Pure functions: the alert webhook validates with `parse_alerts`, deduplicates on `dedupe_key` (Azure
Monitor: alertId + monitorCondition; Alertmanager: fingerprint + startsAt + status, so an alert that fires
again after it resolved is a new one) and picks the runbook with `playbook_for`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args
from urllib.parse import parse_qs, urlparse

SCHEMA_ID = "azureMonitorCommonAlertSchema"
REQUIRED = ("alertId", "alertRule", "severity", "signalType", "monitorCondition", "monitoringService",
            "firedDateTime")
Playbook = Literal["primaryUnavailable", "replicationLag", "walArchivingFailing", "backupStale", "unknown"]
PLAYBOOKS: tuple[str, ...] = get_args(Playbook)
ALERTMANAGER_VERSION = "4"
ALERTMANAGER_LIMIT = 100  # alerts in one delivery (a group); more is refused, never half-handled
FINGERPRINT = re.compile(r"[0-9a-f]{1,64}")
RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")
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
    fingerprint: str | None = None  # Alertmanager's
    description: str | None = None  # the rule's annotation, its measured value in words


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


def _stamp(value: object, where: str) -> str:
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise AlertError(where, f"is required and must be an RFC 3339 time, got {str(value)[:40]!r}")
    return value


def alertmanager_id(fingerprint: str, starts_at: str) -> str:
    """An alert's identity across the deliveries of one firing (a new firing gets a new startsAt), to the
    millisecond: Alertmanager's webhook writes startsAt to the nanosecond, its API to the millisecond."""
    found = RFC3339.fullmatch(starts_at)
    if found is None:
        raise AlertError("startsAt", f"must be an RFC 3339 time, got {starts_at[:40]!r}")
    zone = found.group(3)
    stamp = datetime.fromisoformat(f"{found.group(1)}.{(found.group(2) or '0')[:6]}{'+00:00' if zone == 'Z' else zone}")
    return f"alertmanager:{fingerprint}@{stamp.astimezone(UTC).isoformat(timespec='milliseconds')}"


def _annotation(item: dict[str, Any], name: str) -> str | None:
    annotations = item.get("annotations")
    value = annotations.get(name) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else None


def _expression(generator_url: object) -> str | None:
    """Prometheus's generatorURL carries the rule's expression (`/graph?g0.expr=...`)."""
    if not isinstance(generator_url, str):
        return None
    found = parse_qs(urlparse(generator_url).query).get("g0.expr")
    return found[0] if found else None


def _alertmanager_alert(item: object, at: str) -> Alert:
    if not isinstance(item, dict):
        raise AlertError(at, "must be an object")
    status = item.get("status")
    if status not in ("firing", "resolved"):
        raise AlertError(f"{at}.status", f"must be firing or resolved, got {status!r}")
    labels = item.get("labels")
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise AlertError(f"{at}.labels", "is required: an object of strings")
    if not isinstance(labels.get("alertname"), str) or not labels["alertname"].strip():
        raise AlertError(f"{at}.labels.alertname", "is required and must be a non-empty string")
    fingerprint = item.get("fingerprint")
    if not isinstance(fingerprint, str) or not FINGERPRINT.fullmatch(fingerprint):
        raise AlertError(f"{at}.fingerprint", "is required: the alert's hexadecimal fingerprint")
    starts_at = _stamp(item.get("startsAt"), f"{at}.startsAt")
    ends_at = _stamp(item.get("endsAt"), f"{at}.endsAt") if status == "resolved" else None
    return Alert(
        alert_id=alertmanager_id(fingerprint, starts_at), rule=labels["alertname"],
        severity=labels.get("severity", "unknown"), signal_type="Metric",
        condition="Fired" if status == "firing" else "Resolved", monitoring_service="Alertmanager",
        fired_at=starts_at, resolved_at=ends_at, labels={str(k): v for k, v in labels.items()},
        expression=_expression(item.get("generatorURL")), description=_annotation(item, "description"),
        fingerprint=fingerprint,
    )


def parse_alertmanager(body: dict[str, Any]) -> list[Alert]:
    """Alertmanager's webhook payload: every alert of the group, each answered on its own."""
    if body.get("version") != ALERTMANAGER_VERSION:
        raise AlertError("version", f"must be {ALERTMANAGER_VERSION!r} (Alertmanager's webhook payload), "
                                    f"got {body.get('version')!r}")
    alerts = body.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise AlertError("alerts", "is required: a non-empty array")
    if len(alerts) > ALERTMANAGER_LIMIT:
        raise AlertError("alerts", f"holds {len(alerts)} alerts, more than {ALERTMANAGER_LIMIT}: "
                                   "set max_alerts on the webhook receiver")
    return [_alertmanager_alert(item, f"alerts[{i}]") for i, item in enumerate(alerts)]


def parse_alerts(body: object) -> list[Alert]:
    """Either shape: Azure Monitor's (one alert, `schemaId`) or Alertmanager's (`version` and `alerts`)."""
    if isinstance(body, dict) and "schemaId" not in body and ("alerts" in body or "version" in body):
        return parse_alertmanager(body)
    return [parse_alert(body)]


def dedupe_key(alert: Alert) -> str:
    """One run per alert and condition: a replayed delivery maps to the same URL-safe key."""
    return key_of(alert.alert_id, alert.condition)


def alertmanager_key(fingerprint: str, starts_at: str) -> str:
    """The run of an alert as Alertmanager's API shows it (firing): the operation pgha started for it."""
    return key_of(alertmanager_id(fingerprint, starts_at))


def key_of(alert_id: str, condition: str = "Fired") -> str:
    digest = hashlib.sha256(f"{alert_id}\n{condition}".encode()).hexdigest()[:24]
    return f"alert-{condition.lower()}-{digest}"


def playbook_for(alert: Alert) -> Playbook:
    """The rule's own `playbook` label (pgha's rules carry it), else what its name and expression say."""
    named = alert.labels.get("playbook")
    if named in PLAYBOOKS:
        return named  # type: ignore[return-value]
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
