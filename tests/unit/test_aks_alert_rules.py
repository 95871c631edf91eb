"""The AKS rules, checked by promtool over series shaped as Managed Prometheus (or kube-prometheus-stack)
scrapes them from CNPG's instance manager through pgha's PodMonitors: `namespace`, `pod`, `job`, and the
pod's `cnpg.io/cluster` label copied as `cnpg_io_cluster` (podTargetLabels). Kubelet's volume statistics
carry the claim's `namespace` and `persistentvolumeclaim` only."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.alert_rules import LEFT_OUT as LOCAL_LEFT_OUT
from shared.alert_rules import STANDARD, rules
from shared.alerts import cluster_for, parse_alert, playbook_for
from shared.platforms.aks.alert_rules import LEFT_OUT, aks_rules
from shared.platforms.aks.alerting import aks_rule_group, prometheus_rule
from shared.platforms.aks.config import AksSettings
from tests.alert_payloads import PROMETHEUS
from tests.unit.test_alert_rules import run

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool: run scripts/setup.sh")


def pod(name: str, cluster: str = "pg") -> str:
    return (f'namespace="db", cnpg_io_cluster="{cluster}", pod="{name}", job="db/{cluster}", '
            f'container="postgres", instance="10.0.0.{name[-1]}:9187"')


def alert(name: str, **labels: str) -> dict[str, Any]:
    rule = next(r for r in aks_rules() if r.alert == name)
    return {"exp_labels": {"namespace": "db", "cnpg_io_cluster": "pg", "severity": rule.severity,
                           "playbook": rule.playbook, **labels}}


CASES: list[dict[str, Any]] = [
    {  # pg-2 promoted at 2m: its in_recovery goes 1 -> 0, the old primary's 0 -> 1; an alert for `recent`
        "interval": "30s",
        "input_series": [
            {"series": f"cnpg_pg_replication_in_recovery{{{pod('pg-1')}}}", "values": "0x3 1x40"},
            {"series": f"cnpg_pg_replication_in_recovery{{{pod('pg-2')}}}", "values": "1x3 0x40"},
            {"series": f"cnpg_pg_postmaster_start_time{{{pod('pg-1')}}}", "values": "100x3 300x40"},
            {"series": f"cnpg_pg_postmaster_start_time{{{pod('pg-2')}}}", "values": "100x43"},
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "PGHAPrimaryUnavailable", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "PGHAPrimaryUnavailable", "exp_alerts": [alert("PGHAPrimaryUnavailable")]},
            {"eval_time": "15m", "alertname": "PGHAPrimaryUnavailable", "exp_alerts": []},
        ],
    },
    {  # the primary's postmaster restarted in place (no promotion); a standby's restart is no outage
        "interval": "30s",
        "input_series": [
            {"series": f"cnpg_pg_replication_in_recovery{{{pod('pg-1')}}}", "values": "0x43"},
            {"series": f"cnpg_pg_replication_in_recovery{{{pod('pg-2')}}}", "values": "1x43"},
            {"series": f"cnpg_pg_postmaster_start_time{{{pod('pg-1')}}}", "values": "100x3 200x40"},
            {"series": f"cnpg_pg_postmaster_start_time{{{pod('pg-2')}}}", "values": "100x20 900x22"},
        ],
        "alert_rule_test": [
            {"eval_time": "3m", "alertname": "PGHAPrimaryUnavailable", "exp_alerts": [alert("PGHAPrimaryUnavailable")]},
            {"eval_time": "18m", "alertname": "PGHAPrimaryUnavailable", "exp_alerts": []},
        ],
    },
    {  # three instances, the primary streams to none: critical, after CNPG's 5m
        "interval": "1m",
        "input_series": [
            {"series": f"cnpg_pg_replication_streaming_replicas{{{pod('pg-1')}}}", "values": "2x3 0x10"},
            {"series": f"cnpg_pg_replication_is_wal_receiver_up{{{pod('pg-1')}}}", "values": "0x13"},
            *({"series": f"cnpg_pg_replication_streaming_replicas{{{pod(p)}}}", "values": "0x13"}
              for p in ("pg-2", "pg-3")),
            *({"series": f"cnpg_pg_replication_is_wal_receiver_up{{{pod(p)}}}", "values": "1x3 0x10"}
              for p in ("pg-2", "pg-3")),
            *({"series": f"cnpg_collector_up{{{pod(p)}}}", "values": "1x13"} for p in ("pg-1", "pg-2", "pg-3")),
        ],
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "CNPGClusterHACritical", "exp_alerts": []},
            {"eval_time": "10m", "alertname": "CNPGClusterHACritical", "exp_alerts": [alert("CNPGClusterHACritical")]},
        ],
    },
    {  # archiving fails after its last success, on the primary
        "interval": "1m",
        "input_series": [
            {"series": f"cnpg_pg_stat_archiver_last_archived_time{{{pod('pg-1')}}}", "values": "1000x10"},
            {"series": f"cnpg_pg_stat_archiver_last_failed_time{{{pod('pg-1')}}}", "values": "-1x2 1100x8"},
        ],
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "PGHAWALArchivingFailing", "exp_alerts": []},
            {"eval_time": "5m", "alertname": "PGHAWALArchivingFailing",
             "exp_alerts": [alert("PGHAWALArchivingFailing")]},
        ],
    },
    {  # PostgreSQL down in every instance (the instance managers still answer)
        "interval": "1m",
        "input_series": [
            *({"series": f"cnpg_collector_up{{{pod(p)}}}", "values": "1x2 0x10"} for p in ("pg-1", "pg-2")),
            *({"series": f"up{{{pod(p)}}}", "values": "1x12"} for p in ("pg-1", "pg-2"))],
        "alert_rule_test": [
            {"eval_time": "4m", "alertname": "CNPGClusterOffline", "exp_alerts": []},
            {"eval_time": "9m", "alertname": "CNPGClusterOffline", "exp_alerts": [alert("CNPGClusterOffline")]},
        ],
    },
    {  # pg-2's WAL volume 75% full, its PGDATA 10%: the WAL claim names the cluster
        "interval": "1m",
        "input_series": [
            {"series": 'kubelet_volume_stats_capacity_bytes{namespace="db", persistentvolumeclaim="pg-2-wal"}',
             "values": "100x10"},
            {"series": 'kubelet_volume_stats_available_bytes{namespace="db", persistentvolumeclaim="pg-2-wal"}',
             "values": "25x10"},
            {"series": 'kubelet_volume_stats_capacity_bytes{namespace="db", persistentvolumeclaim="pg-2"}',
             "values": "100x10"},
            {"series": 'kubelet_volume_stats_available_bytes{namespace="db", persistentvolumeclaim="pg-2"}',
             "values": "90x10"},
            {"series": f"cnpg_collector_up{{{pod('pg-2')}}}", "values": "1x10"},
        ],
        "alert_rule_test": [
            {"eval_time": "8m", "alertname": "CNPGClusterLowDiskSpaceWarning",
             "exp_alerts": [alert("CNPGClusterLowDiskSpaceWarning")]},
            {"eval_time": "8m", "alertname": "CNPGClusterLowDiskSpaceCritical", "exp_alerts": []},
        ],
    },
    {  # another application's StatefulSet claim, 95% full, named like an instance's: no CNPG cluster of it
        "interval": "1m",
        "input_series": [
            {"series": 'kubelet_volume_stats_capacity_bytes{namespace="db", persistentvolumeclaim="data-kafka-1"}',
             "values": "100x10"},
            {"series": 'kubelet_volume_stats_available_bytes{namespace="db", persistentvolumeclaim="data-kafka-1"}',
             "values": "5x10"},
            {"series": f"cnpg_collector_up{{{pod('pg-1')}}}", "values": "1x10"},
        ],
        "alert_rule_test": [
            {"eval_time": "8m", "alertname": "CNPGClusterLowDiskSpaceCritical", "exp_alerts": []},
        ],
    },
    {  # backups by the Barman Cloud plugin: its series moves, CNPG's deprecated one keeps an old value
        "interval": "2m",  # within the 5 minutes a sample stays current
        "input_series": [
            {"series": f"cnpg_collector_last_available_backup_timestamp{{{pod('pg-1')}}}", "values": "3600x1450"},
            {"series": f"barman_cloud_cloudnative_pg_io_last_available_backup_timestamp{{{pod('pg-1')}}}",
             "values": "3600+120x630 79200x820"},  # a newer backup every 2 minutes until 21h, then none
        ],
        "alert_rule_test": [
            {"eval_time": "36h", "alertname": "PGHABackupStale", "exp_alerts": []},  # the in-tree value alone: stale
            {"eval_time": "48h", "alertname": "PGHABackupStale", "exp_alerts": [alert("PGHABackupStale")]},
        ],
    },
    {  # three instances, one standby streaming: a warning; its lag over 1 s; pg-3's exporter gone
        "interval": "1m",
        "input_series": [
            {"series": f"cnpg_pg_replication_streaming_replicas{{{pod('pg-1')}}}", "values": "1x15"},
            {"series": f"cnpg_pg_replication_is_wal_receiver_up{{{pod('pg-1')}}}", "values": "0x15"},
            *({"series": f"cnpg_collector_up{{{pod(p)}}}", "values": "1x15"} for p in ("pg-1", "pg-2", "pg-3")),
            {"series": f"cnpg_pg_replication_lag{{{pod('pg-2')}}}", "values": "3x15"},
            *({"series": f"up{{{pod(p)}}}", "values": "1x15"} for p in ("pg-1", "pg-2")),
            {"series": f"up{{{pod('pg-3')}}}", "values": "0x15"},
        ],
        "alert_rule_test": [
            {"eval_time": "10m", "alertname": "CNPGClusterHAWarning", "exp_alerts": [alert("CNPGClusterHAWarning")]},
            {"eval_time": "10m", "alertname": "CNPGClusterHACritical", "exp_alerts": []},
            {"eval_time": "10m", "alertname": "CNPGClusterHighReplicationLag",
             "exp_alerts": [alert("CNPGClusterHighReplicationLag")]},
            {"eval_time": "12m", "alertname": "CNPGInstanceMetricsAbsent",
             "exp_alerts": [alert("CNPGInstanceMetricsAbsent", pod="pg-3")]},
        ],
    },
    {  # 90 of 100 connections on the primary
        "interval": "1m",
        "input_series": [
            {"series": f"cnpg_backends_total{{{pod('pg-1')}, datname=\"app\"}}", "values": "90x10"},
            {"series": f"cnpg_pg_settings_setting{{{pod('pg-1')}, name=\"max_connections\"}}", "values": "100x10"},
        ],
        "alert_rule_test": [
            {"eval_time": "8m", "alertname": "CNPGClusterHighConnectionsWarning",
             "exp_alerts": [alert("CNPGClusterHighConnectionsWarning", pod="pg-1")]},
            {"eval_time": "8m", "alertname": "CNPGClusterHighConnectionsCritical", "exp_alerts": []},
        ],
    },
]


def test_every_aks_rule_parses_and_behaves_on_cnpg_s_series(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yml"
    spec = prometheus_rule("cnpg-system", STANDARD)["spec"]  # the PrometheusRule's groups are a rule file's
    rules_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert "SUCCESS" in run("promtool", "check", "rules", str(rules_file))
    for rule in spec["groups"][0]["rules"]:
        rule.pop("annotations")
    rules_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    tests = tmp_path / "tests.yml"
    tests.write_text(yaml.safe_dump({"rule_files": [str(rules_file)], "evaluation_interval": "30s",
                                     "tests": CASES}, sort_keys=False))
    assert "SUCCESS" in run("promtool", "test", "rules", str(tests))


def test_the_aks_catalog_keeps_the_local_names_and_playbooks_and_says_what_it_leaves_out() -> None:
    local = {r.alert: r for r in rules(STANDARD)}
    aks = {r.alert: r for r in aks_rules()}
    assert set(local) <= set(aks) and not set(aks) & set(LEFT_OUT)
    for name, rule in local.items():
        assert (aks[name].playbook, aks[name].severity, aks[name].for_seconds) == (
            rule.playbook, rule.severity, rule.for_seconds)
        assert "patroni" not in aks[name].expr  # no Patroni on AKS: CNPG's own series only
    # the disk rules, left out locally for want of kubelet, are back where kubelet is scraped
    assert {"CNPGClusterLowDiskSpaceWarning", "CNPGClusterLowDiskSpaceCritical"} <= set(aks) & set(LOCAL_LEFT_OUT)


def test_each_rule_s_alert_reaches_pgha_naming_its_cluster_and_playbook() -> None:
    """As Azure Monitor delivers it: the common alert schema, the rule's labels beside the series' own, and
    Managed Prometheus's `cluster` (the AKS cluster's name), which must not be taken for the CNPG cluster."""
    aks = AksSettings(subscription_id="sub", resource_group="rg", cluster="aks-primary",
                      monitor_workspace_id="/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Monitor/accounts/w")
    for rule in aks_rule_group(aks, "westus3", STANDARD)["properties"]["rules"]:
        body = copy.deepcopy(PROMETHEUS)
        body["data"]["essentials"]["alertRule"] = rule["alert"]
        body["data"]["alertContext"].update(expression=rule["expression"], labels={
            **rule["labels"], "alertname": rule["alert"], "namespace": "db", "cnpg_io_cluster": "pg1",
            "pod": "pg1-2", "cluster": "aks-primary"})
        alert = parse_alert(body)
        assert cluster_for(alert, "default") == ("db", "pg1"), rule["alert"]
        assert playbook_for(alert) == rule["labels"]["playbook"], rule["alert"]
