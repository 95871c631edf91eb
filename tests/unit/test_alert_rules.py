"""The rules and the monitoring configuration, checked by Prometheus's and Alertmanager's own tools:
promtool parses every expression and runs the rules over series shaped as the local targets publish them
(`promtool test rules`), amtool and promtool check the configuration pgha writes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.alert_rules import LEFT_OUT, QUICK, STANDARD, rule_file, rules
from shared.platforms.local.exporter_queries import exporter_queries
from shared.platforms.local.monitoring import AlertRoute, Monitoring, MonitoringPorts

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool: run scripts/setup.sh")


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def target(pod: str, job: str = "patroni", cluster: str = "pg") -> str:
    """The labels Prometheus gives a local member's series (monitoring.py's target files)."""
    port = 8008 if job == "patroni" else 9187
    return (f'namespace="db", cnpg_io_cluster="{cluster}", pod="{pod}", job="{job}", '
            f'instance="127.0.0.1:{port}{pod[-1]}"')


def alert(name: str, **labels: str) -> dict[str, Any]:
    rule = next(r for r in rules(STANDARD) if r.alert == name)
    return {"exp_labels": {"namespace": "db", "cnpg_io_cluster": "pg", "severity": rule.severity,
                           "playbook": rule.playbook, **labels}}


CASES: list[dict[str, Any]] = [
    {  # a failover at 2m: the new timeline stays an alert for `recent` (10m), then it is over
        "interval": "30s",
        "input_series": [
            {"series": f"patroni_postgres_timeline{{{target('pg-1')}}}", "values": "1x3 2x40"},
            {"series": f"patroni_postgres_timeline{{{target('pg-2')}}}", "values": "1x3 2x40"},
            {"series": f"patroni_postmaster_start_time{{{target('pg-1')}}}", "values": "100x43"},
            {"series": f"patroni_primary{{{target('pg-1')}}}", "values": "1x43"},
            {"series": f"patroni_postgres_running{{{target('pg-1')}}}", "values": "1x43"},
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "PGHAPrimaryUnavailable", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "PGHAPrimaryUnavailable", "exp_alerts": [alert("PGHAPrimaryUnavailable")]},
            {"eval_time": "15m", "alertname": "PGHAPrimaryUnavailable", "exp_alerts": []},
        ],
    },
    {  # a primary restarted in place (its postmaster's start time moves), no new timeline
        "interval": "30s",
        "input_series": [
            {"series": f"patroni_postgres_timeline{{{target('pg-1')}}}", "values": "1x20"},
            {"series": f"patroni_postmaster_start_time{{{target('pg-1')}}}", "values": "100x3 0 160x16"},
            {"series": f"patroni_primary{{{target('pg-1')}}}", "values": "1x20"},
            {"series": f"patroni_postgres_running{{{target('pg-1')}}}", "values": "1x3 0 1x16"},
        ],
        "alert_rule_test": [
            {"eval_time": "3m", "alertname": "PGHAPrimaryUnavailable", "exp_alerts": [alert("PGHAPrimaryUnavailable")]},
        ],
    },
    {  # a new cluster: timelines and start times go from nothing (0) to their first value: no outage
        "interval": "30s",
        "input_series": [
            {"series": f"patroni_postgres_timeline{{{target('pg-1')}}}", "values": "0 0 1x20"},
            {"series": f"patroni_postgres_timeline{{{target('pg-2')}}}", "values": "0x4 1x18"},
            {"series": f"patroni_postmaster_start_time{{{target('pg-1')}}}", "values": "0 0 100x20"},
            {"series": f"patroni_primary{{{target('pg-1')}}}", "values": "1x22"},
            {"series": f"patroni_postgres_running{{{target('pg-1')}}}", "values": "0 0 1x20"},
        ],
        "alert_rule_test": [
            {"eval_time": f"{m}m", "alertname": "PGHAPrimaryUnavailable", "exp_alerts": []} for m in (1, 2, 3, 5, 9)
        ],
    },
    {  # the primary stops and nobody starts it (Patroni paused): offline after CNPG's 5m, not before
        "interval": "30s",
        "input_series": [
            {"series": f"patroni_primary{{{target('pg-1')}}}", "values": "1x30"},
            {"series": f"patroni_primary{{{target('pg-2')}}}", "values": "0x30"},
            {"series": f"patroni_postgres_running{{{target('pg-1')}}}", "values": "1 1 0x28"},
            {"series": f"patroni_postgres_running{{{target('pg-2')}}}", "values": "1x30"},
            {"series": f"up{{{target('pg-1')}}}", "values": "1x30"},
            {"series": f"up{{{target('pg-2')}}}", "values": "1x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "4m", "alertname": "CNPGClusterOffline", "exp_alerts": []},
            {"eval_time": "7m", "alertname": "CNPGClusterOffline", "exp_alerts": [alert("CNPGClusterOffline")]},
        ],
    },
    {  # no Patroni answers at all: offline too
        "interval": "1m",
        "input_series": [{"series": f"up{{{target('pg-1')}}}", "values": "0x10"},
                         {"series": f"up{{{target('pg-2')}}}", "values": "0x10"}],
        "alert_rule_test": [
            {"eval_time": "7m", "alertname": "CNPGClusterOffline", "exp_alerts": [alert("CNPGClusterOffline")]},
        ],
    },
    {  # two members, the standby not streaming: HA critical; a one-member cluster never is
        "interval": "1m",
        "input_series": [
            {"series": f"cnpg_pg_replication_streaming_replicas{{{target('pg-1', 'postgres-exporter')}}}",
             "values": "0x10"},
            {"series": f"cnpg_pg_replication_is_wal_receiver_up{{{target('pg-1', 'postgres-exporter')}}}",
             "values": "0x10"},
            {"series": f"cnpg_pg_replication_streaming_replicas{{{target('pg-2', 'postgres-exporter')}}}",
             "values": "0x10"},
            {"series": f"cnpg_pg_replication_is_wal_receiver_up{{{target('pg-2', 'postgres-exporter')}}}",
             "values": "0x10"},
            {"series": f"up{{{target('pg-1')}}}", "values": "1x10"},
            {"series": f"up{{{target('pg-2')}}}", "values": "1x10"},
            {"series": f"cnpg_pg_replication_streaming_replicas{{{target('solo-1', 'postgres-exporter', 'solo')}}}",
             "values": "0x10"},
            {"series": f"cnpg_pg_replication_is_wal_receiver_up{{{target('solo-1', 'postgres-exporter', 'solo')}}}",
             "values": "0x10"},
            {"series": f"up{{{target('solo-1', cluster='solo')}}}", "values": "1x10"},
        ],
        "alert_rule_test": [
            {"eval_time": "6m", "alertname": "CNPGClusterHACritical", "exp_alerts": [alert("CNPGClusterHACritical")]},
            {"eval_time": "6m", "alertname": "CNPGClusterHAWarning", "exp_alerts": []},  # 2 members: < 2 is moot
        ],
    },
    {  # three members, both standbys down (their targets answer no scrape): critical and warning both
        "interval": "1m",
        "input_series": [
            {"series": f"cnpg_pg_replication_streaming_replicas{{{target('pg-1', 'postgres-exporter')}}}",
             "values": "2 0x10"},
            {"series": f"cnpg_pg_replication_is_wal_receiver_up{{{target('pg-1', 'postgres-exporter')}}}",
             "values": "0x11"},
            {"series": f"up{{{target('pg-1')}}}", "values": "1x11"},
            {"series": f"up{{{target('pg-2')}}}", "values": "1 0x10"},
            {"series": f"up{{{target('pg-3')}}}", "values": "1 0x10"},
        ],
        "alert_rule_test": [
            {"eval_time": "7m", "alertname": "CNPGClusterHACritical", "exp_alerts": [alert("CNPGClusterHACritical")]},
            {"eval_time": "7m", "alertname": "CNPGClusterHAWarning", "exp_alerts": [alert("CNPGClusterHAWarning")]},
        ],
    },
    {  # connections: 85 of 100 is a warning, 97 critical too
        "interval": "1m",
        "input_series": [
            {"series": f"cnpg_backends_total{{{target('pg-1', 'postgres-exporter')}}}", "values": "85x10"},
            {"series": f"cnpg_pg_settings_setting{{name=\"max_connections\", {target('pg-1', 'postgres-exporter')}}}",
             "values": "100x10"},
            {"series": f"cnpg_backends_total{{{target('pg-2', 'postgres-exporter')}}}", "values": "97x10"},
            {"series": f"cnpg_pg_settings_setting{{name=\"max_connections\", {target('pg-2', 'postgres-exporter')}}}",
             "values": "100x10"},
        ],
        "alert_rule_test": [
            {"eval_time": "7m", "alertname": "CNPGClusterHighConnectionsWarning",
             "exp_alerts": [alert("CNPGClusterHighConnectionsWarning", pod="pg-1"),
                            alert("CNPGClusterHighConnectionsWarning", pod="pg-2")]},
            {"eval_time": "7m", "alertname": "CNPGClusterHighConnectionsCritical",
             "exp_alerts": [alert("CNPGClusterHighConnectionsCritical", pod="pg-2")]},
        ],
    },
    {  # replay held back on a standby: the lag grows; an idle, caught-up standby reports 0
        "interval": "1m",
        "input_series": [
            {"series": f"cnpg_pg_replication_lag{{{target('pg-2', 'postgres-exporter')}}}",
             "values": "0 0 60+60x10"},
            {"series": f"cnpg_pg_replication_lag{{{target('pg-1', 'postgres-exporter')}}}", "values": "0x12"},
        ],
        "alert_rule_test": [
            {"eval_time": "4m", "alertname": "CNPGClusterHighReplicationLag", "exp_alerts": []},
            {"eval_time": "8m", "alertname": "CNPGClusterHighReplicationLag",
             "exp_alerts": [alert("CNPGClusterHighReplicationLag")]},
        ],
    },
    {  # the archiver's last failure after its last success, for a minute
        "interval": "30s",
        "input_series": [
            {"series": f"cnpg_pg_stat_archiver_last_archived_time{{{target('pg-1', 'postgres-exporter')}}}",
             "values": "1000x10"},
            {"series": f"cnpg_pg_stat_archiver_last_failed_time{{{target('pg-1', 'postgres-exporter')}}}",
             "values": "-1 -1 1030+30x8"},
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "PGHAWALArchivingFailing", "exp_alerts": []},
            {"eval_time": "3m", "alertname": "PGHAWALArchivingFailing",
             "exp_alerts": [alert("PGHAWALArchivingFailing")]},
        ],
    },
    {  # a backup a day and more old is stale; a cluster that never had one is not this rule's
        "interval": "1m",
        "input_series": [
            {"series": f"cnpg_collector_last_available_backup_timestamp{{{target('pg-1', 'postgres-exporter')}}}",
             "values": "3600x1700"},
            {"series": f"cnpg_collector_last_available_backup_timestamp{{{target('n-1', 'postgres-exporter', 'n')}}}",
             "values": "0x1700"},
        ],
        "alert_rule_test": [
            {"eval_time": "20h", "alertname": "PGHABackupStale", "exp_alerts": []},
            {"eval_time": "28h", "alertname": "PGHABackupStale", "exp_alerts": [alert("PGHABackupStale")]},
        ],
    },
]


def test_every_rule_parses_and_behaves_on_the_local_series(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yml"
    shipped = rule_file(STANDARD)
    rules_file.write_text(yaml.safe_dump(shipped, sort_keys=False))
    assert "SUCCESS" in run("promtool", "check", "rules", str(rules_file))
    for rule in shipped["groups"][0]["rules"]:  # the behaviour is the expression and its labels
        rule.pop("annotations")
    rules_file.write_text(yaml.safe_dump(shipped, sort_keys=False))
    tests = tmp_path / "tests.yml"
    tests.write_text(yaml.safe_dump({"rule_files": [str(rules_file)], "evaluation_interval": "30s",
                                     "tests": CASES}, sort_keys=False))
    assert "SUCCESS" in run("promtool", "test", "rules", str(tests))


def test_the_shipped_pace_keeps_cnpg_s_for_and_the_quick_one_caps_it() -> None:
    standard = {r["alert"]: r["for"] for r in rule_file(STANDARD)["groups"][0]["rules"]}
    quick = {r["alert"]: r["for"] for r in rule_file(QUICK)["groups"][0]["rules"]}
    assert standard["CNPGClusterHACritical"] == standard["CNPGClusterOffline"] == "300s"  # CNPG's 5m
    assert standard["CNPGInstanceMetricsAbsent"] == "600s"
    assert set(quick.values()) <= {"0s", "5s"} and quick["CNPGClusterOffline"] == "5s"
    assert rule_file(QUICK)["groups"][0]["interval"] == "1s"
    names = [r.alert for r in rules(STANDARD)]
    assert len(names) == len(set(names)) and not set(names) & set(LEFT_OUT)
    assert {r.playbook for r in rules(STANDARD) if r.origin == "pgha"} == {
        "primaryUnavailable", "walArchivingFailing", "backupStale"}


def test_the_configuration_passes_promtool_and_amtool_and_keeps_the_key_private(tmp_path: Path) -> None:
    monitoring = Monitoring(tmp_path)
    monitoring.dir.mkdir(parents=True)
    ports = MonitoringPorts(prometheus=19090, alertmanager=19093)
    monitoring.configure(QUICK, ports)
    assert "nowhere" in (monitoring.dir / "alertmanager.yml").read_text()  # no route until asked
    monitoring.route_alerts(AlertRoute(url="http://127.0.0.1:7071/api/alerts?code=s3cret", namespaces=["db"]))
    monitoring.route_alerts(AlertRoute(url="http://127.0.0.1:7072/api/alerts?code=other"))  # a demo beside it
    run("promtool", "check", "config", str(monitoring.dir / "prometheus.yml"))
    run("amtool", "check-config", str(monitoring.dir / "alertmanager.yml"))
    config = yaml.safe_load((monitoring.dir / "alertmanager.yml").read_text())
    serve, demo = (r.receiver for r in monitoring.routes()[::-1])
    # one pgha answers each alert: the route for some namespaces first, the one for all after it
    assert config["route"]["routes"] == [{"receiver": demo, "matchers": ['namespace=~"db"']},
                                         {"receiver": serve, "matchers": []}]
    webhook = config["receivers"][1]["webhook_configs"][0]
    assert webhook["send_resolved"] is True and webhook["max_alerts"] == 100  # what /api/alerts takes at once
    for private in ("alertmanager.yml", "route.json"):
        assert (monitoring.dir / private).stat().st_mode & 0o077 == 0, private
    assert "s3cret" not in (monitoring.dir / "prometheus.yml").read_text()
    monitoring.unroute("http://127.0.0.1:7071/api/alerts?code=s3cret")
    assert "s3cret" not in (monitoring.dir / "alertmanager.yml").read_text()
    assert [r.where for r in monitoring.routes()] == ["http://127.0.0.1:7072/api/alerts"]  # the other stays
    monitoring.unroute("http://127.0.0.1:7072/api/alerts?code=other")
    assert not (monitoring.dir / "route.json").exists()
    assert "pgha-" not in (monitoring.dir / "alertmanager.yml").read_text()


def test_the_exporter_queries_name_cnpg_s_series() -> None:
    queries = exporter_queries(Path("/var/lib/pgha/clusters/db/pg/backups"))
    exported = {f"{name}_{column}" for name, query in queries.items() for metric in query["metrics"]
                for column, spec in metric.items() if spec["usage"] != "LABEL"}
    used = " ".join(r.expr for r in rules(STANDARD))
    for series in ("cnpg_pg_replication_lag", "cnpg_pg_replication_streaming_replicas",
                   "cnpg_pg_replication_is_wal_receiver_up", "cnpg_backends_total", "cnpg_pg_settings_setting",
                   "cnpg_pg_stat_archiver_last_failed_time", "cnpg_pg_stat_archiver_last_archived_time",
                   "cnpg_collector_last_available_backup_timestamp"):
        assert series in exported and series in used, series
    assert json.dumps(queries).count("/var/lib/pgha/clusters/db/pg/backups") == 2
