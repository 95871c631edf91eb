"""Azure Monitor common-schema alerts and Alertmanager's webhook: validation, dedupe keys, playbooks,
clusters."""

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shared.alerts import AlertError, cluster_for, dedupe_key, parse_alert, parse_alerts, playbook_for
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


# ---- Alertmanager's webhook (payloads captured from Alertmanager 0.25.0: fixtures/alertmanager) ----------
AM = Path(__file__).parents[1] / "contract" / "fixtures" / "alertmanager"


def captured(name: str) -> dict[str, Any]:
    return json.loads((AM / f"{name}.json").read_text())


def test_an_alertmanager_group_is_one_alert_each_with_its_cluster_and_playbook() -> None:
    body = captured("firing")
    other = copy.deepcopy(body["alerts"][0])
    other["labels"].update(cnpg_io_cluster="pg-two", alertname="PGHAWALArchivingFailing",
                           playbook="walArchivingFailing")
    other["fingerprint"] = "0123456789abcdef"
    body["alerts"].append(other)
    first, second = parse_alerts(body)
    assert first.monitoring_service == "Alertmanager" and first.condition == "Fired" and first.fingerprint
    assert first.expression == "max by (namespace, cnpg_io_cluster) (cnpg_pg_replication_lag) > 1"
    assert cluster_for(first, "default") == ("alerting", "it-alert") and playbook_for(first) == "replicationLag"
    assert cluster_for(second, "default") == ("alerting", "pg-two") and playbook_for(second) == "walArchivingFailing"
    assert dedupe_key(first) != dedupe_key(second)


def test_one_firing_is_one_key_a_new_firing_another_and_its_resolve_finds_it() -> None:
    firing, resolved = parse_alerts(captured("firing"))[0], parse_alerts(captured("resolved"))[0]
    again = parse_alerts(captured("firing"))[0]
    assert dedupe_key(firing) == dedupe_key(again)  # a retried delivery, a repeat_interval's reminder
    assert resolved.condition == "Resolved" and resolved.resolved_at
    assert dedupe_key(replace(resolved, condition="Fired")) == dedupe_key(firing)  # what a resolve ends
    later = captured("firing")
    later["alerts"][0]["startsAt"] = "2026-12-02T17:10:00Z"  # it fired again after it resolved
    assert dedupe_key(parse_alerts(later)[0]) != dedupe_key(firing)
    finer = captured("firing")  # the webhook writes nanoseconds where the API writes milliseconds
    finer["alerts"][0]["startsAt"] = firing.fired_at.replace("Z", ".000000000Z")
    assert dedupe_key(parse_alerts(finer)[0]) == dedupe_key(firing)


def test_a_label_that_names_no_playbook_falls_back_on_the_words() -> None:
    body = captured("firing")
    body["alerts"][0]["labels"]["playbook"] = "dropDatabase"
    assert playbook_for(parse_alerts(body)[0]) == "replicationLag"  # from the alert's name


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(version="3"), "version"),
        (lambda b: b.update(alerts=[]), "alerts"),
        (lambda b: b.update(alerts=[b["alerts"][0]] * 101), "alerts"),
        (lambda b: b["alerts"][0].update(status="pending"), "alerts[0].status"),
        (lambda b: b["alerts"][0]["labels"].pop("alertname"), "alerts[0].labels.alertname"),
        (lambda b: b["alerts"][0].update(labels={"alertname": 3}), "alerts[0].labels"),
        (lambda b: b["alerts"][0].update(fingerprint="not hex!"), "alerts[0].fingerprint"),
        (lambda b: b["alerts"][0].update(startsAt="yesterday"), "alerts[0].startsAt"),
        (lambda b: b["alerts"].append("x"), "alerts[1]"),
    ],
)
def test_bad_alertmanager_deliveries_name_the_field(mutate: object, field: str) -> None:
    body = captured("firing")
    mutate(body)  # type: ignore[operator]
    with pytest.raises(AlertError) as caught:
        parse_alerts(body)
    assert caught.value.field == field


def test_a_resolved_alert_needs_its_end() -> None:
    body = captured("resolved")
    body["alerts"][0]["endsAt"] = None
    with pytest.raises(AlertError) as caught:
        parse_alerts(body)
    assert caught.value.field == "alerts[0].endsAt"


def test_neither_shape_is_refused_on_the_azure_field() -> None:
    with pytest.raises(AlertError) as caught:
        parse_alerts({"hello": "world"})
    assert caught.value.field == "schemaId"
