"""The alert rules pgha ships, and the pace they are evaluated at.

CNPG's recommended rules (cloudnative-pg/charts, `charts/cluster/prometheus_rules/`) keep their names; the
ones that mean something on one machine are rewritten here on the local stack's metrics, grouped by
`namespace` and `cnpg_io_cluster` so that one rule file serves every cluster. pgha adds the rules its
playbooks answer. Each rule says which playbook answers it in its `playbook` label, so the alert webhook
needs no guessing from names.

The local metrics: Patroni's own `/metrics` (`patroni_*`) and one postgres_exporter per member whose
queries (`exporter_queries`) publish the series CNPG's default monitoring queries publish, under CNPG's
names (`cnpg_pg_replication_lag`, `cnpg_pg_stat_archiver_*`, ...), each written here from what CNPG's
documentation says it measures.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.alerts import Playbook

BY_CLUSTER = "namespace, cnpg_io_cluster"


class Pace(BaseModel):
    """How fast monitoring sees and says: the shipped pace keeps CNPG's `for:` durations; the quick one
    (tests and the demo) cuts every wait so that a fault is an alert within seconds."""

    model_config = ConfigDict(frozen=True)

    name: Literal["standard", "quick"]
    scrape_seconds: int
    evaluation_seconds: int
    group_wait_seconds: int
    group_interval_seconds: int
    repeat_interval_seconds: int
    # a rule's own `for:` is kept up to this (None: always kept)
    longest_for_seconds: int | None
    # how long a past event (a failover, a restarted primary) stays an alert: longer than a scrape, an
    # evaluation and a group_wait together, or the fault is gone before anyone sees it
    recent_seconds: int
    # a backup older than this is stale (a daily ScheduledBackup that missed its run, with an hour's slack)
    backup_stale_seconds: int

    def hold(self, seconds: int) -> int:
        return seconds if self.longest_for_seconds is None else min(seconds, self.longest_for_seconds)


STANDARD = Pace(name="standard", scrape_seconds=30, evaluation_seconds=30, group_wait_seconds=30,
                group_interval_seconds=300, repeat_interval_seconds=4 * 3600, longest_for_seconds=None,
                recent_seconds=600, backup_stale_seconds=25 * 3600)
# `for:` at most 5 s: a failover (2 to 4 s here) is not an offline cluster, a primary stopped for good is
QUICK = Pace(name="quick", scrape_seconds=1, evaluation_seconds=1, group_wait_seconds=1,
             group_interval_seconds=2, repeat_interval_seconds=3600, longest_for_seconds=5,
             recent_seconds=20, backup_stale_seconds=25 * 3600)
PACES = {pace.name: pace for pace in (STANDARD, QUICK)}


class AlertRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    alert: str
    expr: str
    for_seconds: int
    severity: Literal["critical", "warning"]
    playbook: Playbook
    summary: str
    description: str
    origin: Literal["cnpg", "pgha"]

    def prometheus(self, pace: Pace) -> dict[str, Any]:
        """The rule in Prometheus's rule-file form."""
        return {"alert": self.alert, "expr": self.expr, "for": f"{pace.hold(self.for_seconds)}s",
                "labels": {"severity": self.severity, "playbook": self.playbook},
                "annotations": {"summary": self.summary, "description": self.description}}


def standbys_streaming(below: int) -> str:
    """The primary's streaming standbys (a standby adds -1 through its WAL receiver, as in CNPG's rule),
    for clusters that have more than `below` members: counted by their scrape targets, which stay (`up` 0)
    while a member is down, as CNPG's chart counts `instances`."""
    return (f"max by ({BY_CLUSTER}) (cnpg_pg_replication_streaming_replicas - cnpg_pg_replication_is_wal_receiver_up)"
            f" < {below} and on ({BY_CLUSTER}) count by ({BY_CLUSTER}) (up{{job=\"patroni\"}}) > {below}")


def lagging(alert: str, severity: Literal["critical", "warning"], seconds: int, summary: str) -> AlertRule:
    """A standby replaying WAL `seconds` behind what it received (CNPG's lag, 0 while caught up)."""
    return AlertRule(
        alert=alert, origin="cnpg", severity=severity, playbook="replicationLag", for_seconds=300,
        expr=f"max by ({BY_CLUSTER}) (cnpg_pg_replication_lag) > {seconds}", summary=summary,
        description="a standby of {{ $labels.namespace }}/{{ $labels.cnpg_io_cluster }} replays WAL "
                    "{{ $value }} s behind what it received.")


def connections(alert: str, severity: Literal["critical", "warning"], percent: int, summary: str) -> AlertRule:
    """An instance using more than `percent` of its max_connections."""
    return AlertRule(
        alert=alert, origin="cnpg", severity=severity, playbook="unknown", for_seconds=300,
        expr=f"sum by ({BY_CLUSTER}, pod) (cnpg_backends_total) / max by ({BY_CLUSTER}, pod) "
             f"(cnpg_pg_settings_setting{{name=\"max_connections\"}}) * 100 > {percent}",
        summary=summary, description="{{ $labels.pod }} uses {{ $value }}% of max_connections.")


def rules(pace: Pace) -> list[AlertRule]:
    recent = f"{pace.recent_seconds}s"
    return [
        AlertRule(
            alert="CNPGClusterHACritical", origin="cnpg", severity="critical", playbook="replicationLag",
            for_seconds=300, expr=standbys_streaming(1),
            summary="CNPG Cluster has no standby replicas!",
            description="{{ $labels.namespace }}/{{ $labels.cnpg_io_cluster }} has no streaming standby: "
                        "losing the primary now loses the data only it holds."),
        AlertRule(
            alert="CNPGClusterHAWarning", origin="cnpg", severity="warning", playbook="replicationLag",
            for_seconds=300, expr=standbys_streaming(2),
            summary="CNPG Cluster has fewer than 2 standby replicas.",
            description="{{ $labels.namespace }}/{{ $labels.cnpg_io_cluster }} has {{ $value }} streaming "
                        "standby: one more failure leaves it without a replica."),
        lagging("CNPGClusterHighReplicationLag", "warning", 1, "CNPG Cluster high replication lag"),
        lagging("CNPGClusterPhysicalReplicationLagCritical", "critical", 15,
                "CNPG Cluster very high physical replication lag"),
        connections("CNPGClusterHighConnectionsWarning", "warning", 80,
                    "CNPG Instance is approaching the maximum number of connections."),
        connections("CNPGClusterHighConnectionsCritical", "critical", 95,
                    "CNPG Instance maximum number of connections critical!"),
        AlertRule(
            alert="CNPGClusterOffline", origin="cnpg", severity="critical", playbook="primaryUnavailable",
            for_seconds=300,
            # no member runs a primary: Patroni's own view, present while any Patroni answers, or no Patroni
            # answers at all
            expr=f"max by ({BY_CLUSTER}) (patroni_primary * patroni_postgres_running) == 0"
                 f" or max by ({BY_CLUSTER}) (up{{job=\"patroni\"}}) == 0",
            summary="CNPG Cluster has no running primary",
            description="{{ $labels.namespace }}/{{ $labels.cnpg_io_cluster }} has no running primary: "
                        "no client can write."),
        AlertRule(
            alert="CNPGInstanceMetricsAbsent", origin="cnpg", severity="critical", playbook="unknown",
            for_seconds=600, expr=f"max by ({BY_CLUSTER}, pod) (up{{job=~\"patroni|postgres-exporter\"}}) == 0",
            summary="CNPG instance metrics exporter is hung",
            description="{{ $labels.pod }} answers no scrape: its Patroni or its exporter is down."),
        AlertRule(
            alert="PGHAPrimaryUnavailable", origin="pgha", severity="critical", playbook="primaryUnavailable",
            for_seconds=0,
            # what stays visible after the HA manager has already put a primary back, within the last `recent`:
            # a running member's timeline went up (a failover), or a running primary's postmaster started
            # again. Two different non-zero values in the window, not any change: a new cluster's first start
            # (0, then its first value) is no outage, nor is a stopped primary (CNPGClusterOffline's)
            expr=f"max by ({BY_CLUSTER}) (max_over_time(patroni_postgres_timeline[{recent}])"
                 f" > min_over_time((patroni_postgres_timeline > 0)[{recent}:]))"
                 f" or max by ({BY_CLUSTER}) ((max_over_time(patroni_postmaster_start_time[{recent}])"
                 f" > min_over_time((patroni_postmaster_start_time > 0)[{recent}:]))"
                 f" * patroni_primary * patroni_postgres_running) > 0",
            summary="The primary was unavailable",
            description="{{ $labels.namespace }}/{{ $labels.cnpg_io_cluster }}: a failover or a restart of "
                        f"the primary in the last {recent}."),
        AlertRule(
            alert="PGHAWALArchivingFailing", origin="pgha", severity="critical", playbook="walArchivingFailing",
            for_seconds=60,
            expr=f"max by ({BY_CLUSTER}) (cnpg_pg_stat_archiver_last_failed_time"
                 f" - cnpg_pg_stat_archiver_last_archived_time) > 0",
            summary="WAL archiving is failing",
            description="the primary of {{ $labels.namespace }}/{{ $labels.cnpg_io_cluster }} failed to "
                        "archive WAL after its last success: the recovery point stops moving."),
        AlertRule(
            alert="PGHABackupStale", origin="pgha", severity="warning", playbook="backupStale",
            for_seconds=600,
            expr=f"time() - max by ({BY_CLUSTER}) (cnpg_collector_last_available_backup_timestamp > 0)"
                 f" > {pace.backup_stale_seconds}",
            summary="The newest backup is stale",
            description="the newest backup of {{ $labels.namespace }}/{{ $labels.cnpg_io_cluster }} is "
                        "{{ $value | humanizeDuration }} old."),
    ]


# CNPG's recommended rules that mean nothing on one machine, and why
LEFT_OUT: dict[str, str] = {
    "CNPGClusterLowDiskSpaceWarning": "rests on kubelet's volume metrics (kubelet_volume_stats_*), "
                                      "which nothing exports here",
    "CNPGClusterLowDiskSpaceCritical": "rests on kubelet's volume metrics, which nothing exports here",
    "CNPGClusterZoneSpreadWarning": "every member runs on this one machine: there are no zones to spread over",
    "CNPGClusterInstancesOnSameNode": "every member runs on this one machine by design: it would always fire",
    "CNPGClusterPhysicalReplicationLagWarning": "the same expression as CNPGClusterHighReplicationLag: one fault, "
                                                "one alert",
    "CNPGClusterLogicalReplication*": "pgha's clusters make no subscriptions, and no pg_stat_subscription query "
                                      "is exported here",
}


def rule_file(pace: Pace) -> dict[str, Any]:
    return {"groups": [{"name": "pgha", "interval": f"{pace.evaluation_seconds}s",
                        "rules": [rule.prometheus(pace) for rule in rules(pace)]}]}
