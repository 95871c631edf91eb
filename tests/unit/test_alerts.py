"""Azure Monitor common-schema alerts: validation, dedupe keys, playbooks, clusters."""

import copy

import pytest

from shared.alerts import AlertError, cluster_for, dedupe_key, parse_alert, playbook_for
from tests.alert_payloads import LOG, METRIC, PROMETHEUS


def test_prometheus_alert_maps_to_its_cluster_and_playbook() -> None:
    alert = parse_alert(PROMETHEUS)
    assert alert.condition == "Fired" and alert.monitoring_service == "Prometheus"
    assert alert.value == "0" and alert.labels["alertname"] == "CNPGClusterOffline"
    assert playbook_for(alert) == "primaryUnavailable"
    assert cluster_for(alert, "default") == ("cnpg-database", "pg-primary")


def test_metric_and_log_alerts() -> None:
    metric = parse_alert(METRIC)
    assert metric.metrics == ["cnpg_pg_replication_lag"]
    assert playbook_for(metric) == "replicationLag"
    assert cluster_for(metric, "cnpg-database") == ("cnpg-database", "pg-primary")
    log = parse_alert(LOG)
    assert playbook_for(log) == "backupStale"
    assert cluster_for(log, "default") == ("default", "aks-primary")


def test_unknown_alert_is_report_only() -> None:
    body = copy.deepcopy(METRIC)
    body["data"]["essentials"]["alertRule"] = "disk-iops"
    body["data"]["alertContext"] = {}
    alert = parse_alert(body)
    assert playbook_for(alert) == "unknown"


def test_dedupe_key_is_stable_per_alert_and_condition() -> None:
    fired = parse_alert(PROMETHEUS)
    again = parse_alert(copy.deepcopy(PROMETHEUS))
    resolved_body = copy.deepcopy(PROMETHEUS)
    resolved_body["data"]["essentials"]["monitorCondition"] = "Resolved"
    resolved = parse_alert(resolved_body)
    assert dedupe_key(fired) == dedupe_key(again)
    assert dedupe_key(fired) != dedupe_key(resolved)
    assert all(c.isalnum() or c == "-" for c in dedupe_key(fired))


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(schemaId="somethingElse"), "schemaId"),
        (lambda b: b.pop("data"), "data.essentials"),
        (lambda b: b["data"]["essentials"].pop("alertId"), "data.essentials.alertId"),
        (lambda b: b["data"]["essentials"].update(monitorCondition="Maybe"), "data.essentials.monitorCondition"),
        (lambda b: b["data"]["essentials"].update(severity=""), "data.essentials.severity"),
    ],
)
def test_bad_alerts_name_the_field(mutate: object, field: str) -> None:
    body = copy.deepcopy(PROMETHEUS)
    mutate(body)  # type: ignore[operator]
    with pytest.raises(AlertError) as caught:
        parse_alert(body)
    assert caught.value.field == field


def test_not_an_object() -> None:
    with pytest.raises(AlertError) as caught:
        parse_alert([PROMETHEUS])
    assert caught.value.field == "body"


def test_the_aks_cluster_label_of_managed_prometheus_is_the_last_resort() -> None:
    body = copy.deepcopy(PROMETHEUS)
    body["data"]["alertContext"]["labels"] = {"alertname": "CNPGClusterOffline", "cluster": "aks-primary",
                                              "namespace": "cnpg-database", "pod": "pg-primary-2"}
    assert cluster_for(parse_alert(body), "default") == ("cnpg-database", "pg-primary")
    body["data"]["alertContext"]["labels"]["cnpg_io_cluster"] = "pg-other"
    assert cluster_for(parse_alert(body), "default") == ("cnpg-database", "pg-other")


def test_labels_that_are_not_names_name_no_cluster() -> None:
    body = copy.deepcopy(PROMETHEUS)
    body["data"]["alertContext"]["labels"] = {"cluster": "pg/status", "namespace": "../x"}
    body["data"]["essentials"]["configurationItems"] = []
    assert cluster_for(parse_alert(body), "default") is None
