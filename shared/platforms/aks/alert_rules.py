"""pgha's alert rules on AKS: the same alerts as the local stack's (shared/alert_rules.py: names, severities,
`for:`, playbooks and words), written on the series CloudNativePG's instance manager exports
(config/manager/default-monitoring.yaml and its collector: `cnpg_collector_*`, `cnpg_pg_*`).

CNPG's chart (cloudnative-pg/charts `charts/cluster/prometheus_rules/`, at b21ad2d) renders one set per
cluster, selecting `namespace` and the pods `<cluster>-<serial>`. pgha renders one set for every cluster
instead, grouped by `namespace` and `cnpg_io_cluster`: its PodMonitors copy each pod's `cnpg.io/cluster`
label onto the series (`podTargetLabels`, which prometheus-operator writes as `cnpg_io_cluster`), so one
rule group, made once with the Function App, serves clusters made later, and the alert's labels name the
cluster the webhook acts on. Where the chart differs otherwise: its HA rules group by `job` over a whole
namespace, and its WAL-volume disk rule appends `-wal` after the pod selector's `$`, so it never matches.
"""

from __future__ import annotations

from shared.alert_rules import BY_CLUSTER, STANDARD, AlertRule, Pace, rules

# CNPG's rules left out on AKS, and why
LEFT_OUT: dict[str, str] = {
    "CNPGClusterPhysicalReplicationLagWarning": "the same expression as CNPGClusterHighReplicationLag: one fault, "
                                                "one alert",
    "CNPGClusterLogicalReplication*": "pgha's clusters make no subscriptions",
    "CNPGClusterZoneSpreadWarning": "pgha checks the zone spread itself at deploy (spec.zoneSpread); the rule "
                                    "needs kube-state-metrics' node labels, which Managed Prometheus's default "
                                    "profile drops",
    "CNPGClusterInstancesOnSameNode": "the same: pgha's deploy checks where the instances run",
}
CNPG_TARGETS = 'cnpg_io_cluster!=""'  # the targets of pgha's PodMonitors, and only those
# the plugin's metrics reach the instance's endpoint named for the plugin (barman-cloud.cloudnative-pg.io)
PLUGIN_BACKUP = "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp"


def volume_use(suffix: str, percent: int) -> str:
    """A PGDATA (or `-wal`) volume's use, from kubelet's volume statistics, by the cluster its claim names
    (pgha makes no tablespaces)."""
    claim = f'persistentvolumeclaim=~".+-[1-9][0-9]*{suffix}"'
    used = (f"1 - kubelet_volume_stats_available_bytes{{{claim}}}"
            f" / kubelet_volume_stats_capacity_bytes{{{claim}}}")
    cluster = f'label_replace({used}, "cnpg_io_cluster", "$1", "persistentvolumeclaim", "(.+)-[1-9][0-9]*{suffix}")'
    # a claim named like a StatefulSet's (data-kafka-1) is no CNPG cluster's: only those that export CNPG's series
    return (f"max by ({BY_CLUSTER}) ({cluster}) * 100 > {percent}"
            f" and on ({BY_CLUSTER}) group by ({BY_CLUSTER}) (cnpg_collector_up)")


def expressions(pace: Pace) -> dict[str, str]:
    """Each alert's expression on CNPG's series."""
    recent = f"{pace.recent_seconds}s"
    streaming = (f"max by ({BY_CLUSTER}) (cnpg_pg_replication_streaming_replicas"
                 f" - cnpg_pg_replication_is_wal_receiver_up)")
    instances = f"count by ({BY_CLUSTER}) (cnpg_collector_up)"
    in_use = (f"sum by ({BY_CLUSTER}, pod) (cnpg_backends_total) / max by ({BY_CLUSTER}, pod) "
              f'(cnpg_pg_settings_setting{{name="max_connections"}}) * 100')
    return {
        "CNPGClusterHACritical": f"{streaming} < 1 and on ({BY_CLUSTER}) {instances} > 1",
        "CNPGClusterHAWarning": f"{streaming} < 2 and on ({BY_CLUSTER}) {instances} > 2",
        "CNPGClusterHighReplicationLag": f"max by ({BY_CLUSTER}) (cnpg_pg_replication_lag) > 1",
        "CNPGClusterPhysicalReplicationLagCritical": f"max by ({BY_CLUSTER}) (cnpg_pg_replication_lag) > 15",
        "CNPGClusterHighConnectionsWarning": f"{in_use} > 80",
        "CNPGClusterHighConnectionsCritical": f"{in_use} > 95",
        # no instance runs PostgreSQL, or none answers a scrape (its pods stay targets while they exist)
        "CNPGClusterOffline": f"max by ({BY_CLUSTER}) (cnpg_collector_up) == 0"
                              f" or max by ({BY_CLUSTER}) (up{{{CNPG_TARGETS}}}) == 0",
        "CNPGInstanceMetricsAbsent": f"max by ({BY_CLUSTER}, pod) (up{{{CNPG_TARGETS}}}) == 0",
        # what stays visible once CNPG has already put a primary back, within the last `recent`: an
        # instance's in_recovery changed (a standby promoted, the old primary rejoining), or the primary's
        # postmaster started again
        "PGHAPrimaryUnavailable": f"max by ({BY_CLUSTER}) (changes(cnpg_pg_replication_in_recovery[{recent}])) > 0"
                                  f" or max by ({BY_CLUSTER}) (changes(cnpg_pg_postmaster_start_time[{recent}])"
                                  f" and on (namespace, pod) cnpg_pg_replication_in_recovery == 0) > 0",
        "PGHAWALArchivingFailing": f"max by ({BY_CLUSTER}) (cnpg_pg_stat_archiver_last_failed_time"
                                   f" - cnpg_pg_stat_archiver_last_archived_time) > 0",
        # the Barman Cloud plugin's series (CNPG 1.26 deprecated its own, which the plugin does not update), or
        # the in-tree one's: the newest of the two
        "PGHABackupStale": f"time() - max by ({BY_CLUSTER}) ({PLUGIN_BACKUP} > 0"
                           f" or cnpg_collector_last_available_backup_timestamp > 0) > {pace.backup_stale_seconds}",
    }


def aks_rules(pace: Pace = STANDARD) -> list[AlertRule]:
    """The local catalog's alerts on CNPG's series, plus the disk rules, which only mean something where
    kubelet's volume statistics are scraped."""
    written = expressions(pace)
    disk = [AlertRule(alert=f"CNPGClusterLowDiskSpace{level}", origin="cnpg", severity=severity,
                      playbook="unknown", for_seconds=300,
                      expr=f"{volume_use('', percent)} or {volume_use('-wal', percent)}",
                      summary=f"CNPG Instance is running out of disk space{'!' if level == 'Critical' else '.'}",
                      description="a volume of {{ $labels.namespace }}/{{ $labels.cnpg_io_cluster }} is "
                                  f"over {percent}% full.")
            for level, severity, percent in (("Warning", "warning", 70), ("Critical", "critical", 90))]
    return [rule.model_copy(update={"expr": written[rule.alert]}) for rule in rules(pace)] + disk
