"""The queries each member's postgres_exporter runs (`--extend.query-path`): the series CNPG's default
monitoring queries publish, under CNPG's names, so the rules read the same on both platforms."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def exporter_queries(backups_dir: Path) -> dict[str, Any]:
    """The series CNPG's default monitoring queries publish, under CNPG's names and with their meaning
    (cloudnative-pg v1.30.0, config/manager/default-monitoring.yaml), for postgres_exporter's
    `--extend.query-path` (the exporter names each `<query>_<column>`). The lag is 0 while a standby has
    replayed all it received, so an idle primary never makes it grow; the archiver's times are -1 for
    never, and it is read on the primary only, as CNPG does."""
    gauge = {"usage": "GAUGE"}
    folder = "'" + str(backups_dir).replace("'", "''") + "'"  # a SQL literal, whatever PGHA_HOME holds
    return {
        "cnpg_pg_replication": {
            "query": "SELECT CASE WHEN NOT pg_is_in_recovery()"
                     " OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
                     " ELSE COALESCE(GREATEST(0, EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())), 0)"
                     " END AS lag,"
                     " (SELECT count(*) FROM pg_stat_replication) AS streaming_replicas,"
                     " (SELECT count(*) > 0 FROM pg_stat_wal_receiver)::int AS is_wal_receiver_up",
            "metrics": [{"lag": {**gauge, "description": "seconds the standby's replay is behind what it "
                                                         "received (0 when caught up or on the primary)"}},
                        {"streaming_replicas": {**gauge, "description": "WAL senders of this instance"}},
                        {"is_wal_receiver_up": {**gauge, "description": "1 while this standby has a WAL receiver"}}],
        },
        "cnpg_backends": {
            "query": "SELECT count(*) AS total FROM pg_stat_activity WHERE backend_type = 'client backend'",
            "metrics": [{"total": {**gauge, "description": "client backends"}}],
        },
        "cnpg_pg_settings": {
            "query": "SELECT name, setting::float AS setting FROM pg_settings WHERE name = 'max_connections'",
            "metrics": [{"name": {"usage": "LABEL", "description": "setting"}},
                        {"setting": {**gauge, "description": "the setting's value"}}],
        },
        "cnpg_pg_stat_archiver": {  # the primary's only (or a demoted one's old failures would linger)
            "query": "SELECT archived_count, failed_count,"
                     " COALESCE(EXTRACT(EPOCH FROM last_archived_time), -1) AS last_archived_time,"
                     " COALESCE(EXTRACT(EPOCH FROM last_failed_time), -1) AS last_failed_time"
                     " FROM pg_stat_archiver WHERE NOT pg_is_in_recovery()",
            "metrics": [{"archived_count": {"usage": "COUNTER", "description": "WAL files archived"}},
                        {"failed_count": {"usage": "COUNTER", "description": "failed archive attempts"}},
                        {"last_archived_time": {**gauge, "description": "epoch of the last success (-1: none)"}},
                        {"last_failed_time": {**gauge, "description": "epoch of the last failure (-1: none)"}}],
        },
        # CNPG's instance manager reports the newest completed Backup of its Cluster; here the Backup
        # records are the cluster's `backups/*.json` (backups.py), read by the superuser this exporter is
        "cnpg_collector": {
            "query": "SELECT COALESCE(max(EXTRACT(EPOCH FROM (b ->> 'stoppedAt')::timestamptz)), 0)"
                     " AS last_available_backup_timestamp FROM ("
                     f"SELECT pg_read_file({folder} || '/' || f, 0, 1048576, true)::jsonb AS b"
                     f" FROM pg_ls_dir({folder}, true, false) AS f WHERE f LIKE '%.json') AS r"
                     " WHERE b ->> 'phase' = 'completed'",
            "metrics": [{"last_available_backup_timestamp": {
                **gauge, "description": "epoch of the newest completed backup (0: none)"}}],
        },
    }
