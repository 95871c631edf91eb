"""A local cluster's status in CNPG's terms, from Patroni's REST API and the primary's own views; and its
metrics, which Patroni serves as CNPG's instances do."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

from shared import ports
from shared import status as st
from shared.outcome import Outcome, done, skipped
from shared.platforms.local import patroni
from shared.platforms.local.members import Members
from shared.platforms.local.patroni import Member
from shared.platforms.local.stack import Stack
from shared.platforms.local.state import Records
from shared.spec import ClusterSpec


class Status:
    def __init__(self, records: Records, stack: Stack, members: Members) -> None:
        self.records = records
        self.stack = stack
        self.members = members

    def cluster_status(self, namespace: str, name: str) -> st.ClusterStatus:
        spec = self.records.stored_spec(namespace, name)
        if spec is None:
            return st.ClusterStatus(name=name, namespace=namespace, phase=st.NOT_FOUND)
        members = self.records.members(namespace, name)
        topology = next((t for m in members if (t := patroni.get(m, "/cluster"))), None)
        # /patroni asks PostgreSQL itself and can stall on a member that is starting: ask all at once, briefly
        with ThreadPoolExecutor(max_workers=len(members) or 1) as pool:
            answers = pool.map(lambda m: patroni.get(m, "/patroni", timeout=0.5) or {}, members)
        positions = {m.name: answer for m, answer in zip(members, answers, strict=True)}
        leader = next((m["name"] for m in (topology or {}).get("members", []) if m.get("role") == "leader"), None)
        replication, archiver, standby_names, slots = (
            self._primary_view(spec, leader) if leader else ({}, None, None, [])
        )
        status = patroni.cluster_status(
            namespace, name, [m.name for m in members], topology, positions, spec.synchronous_replicas, replication
        )
        failure = first_failure(members, topology, status)
        if failure:
            status = status.model_copy(update={"phase": st.UNRECOVERABLE, "phase_reason": failure, "failure": failure})
        elif (stack := self.stack.state()) and not ports.port_open(stack.etcd_port):
            # not final (etcd may come back), but the reason no leader is elected or kept
            status = status.model_copy(update={"phase_reason": f"etcd, Patroni's DCS, does not answer on "
                                                               f"127.0.0.1:{stack.etcd_port}"})
        return status.model_copy(update={
            "conditions": [archiving_condition(archiver, status.current_primary)],
            "synchronous_standby_names": standby_names,
            "replication_slots": slots,
        })

    def _primary_view(
        self, spec: ClusterSpec, primary: str
    ) -> tuple[dict[str, dict[str, Any]], Any, str | None, list[st.ReplicationSlot]]:
        """pg_stat_replication, pg_stat_archiver, synchronous_standby_names and the replication slots,
        as the primary sees them."""
        try:
            with psycopg.connect(self.members.superuser_dsn(spec, primary), autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT application_name, state, sync_state, replay_lsn::text FROM pg_stat_replication"
                ).fetchall()
                archiver = conn.execute(
                    "SELECT last_archived_wal, last_archived_time, last_failed_wal, last_failed_time "
                    "FROM pg_stat_archiver"
                ).fetchone()
                names = conn.execute("SELECT current_setting('synchronous_standby_names')").fetchone()
                slots = [st.ReplicationSlot(name=r[0], active=r[1], wal_status=r[2], retained_bytes=r[3])
                         for r in conn.execute(
                             "SELECT slot_name, active, wal_status, "
                             "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
                             "FROM pg_replication_slots WHERE slot_type = 'physical' ORDER BY slot_name")]
        except psycopg.Error:
            return {}, None, None, []
        replication = {r[0]: {"state": r[1], "sync_state": r[2], "replay_lsn": r[3]} for r in rows}
        return replication, archiver, names[0] if names else None, slots

    def verify_monitoring(self, spec: ClusterSpec) -> Outcome:
        """Scrape every member's /metrics and its exporter's, as Prometheus will (Prometheus takes up new targets
        in batches of 5 s: not waited for here); Patroni's loop may trail PostgreSQL by a second."""
        if not spec.monitoring.enable_pod_monitor:
            return skipped("monitoring disabled in spec")
        members = self.records.members(spec.namespace, spec.name)
        deadline = time.monotonic() + 15
        while True:
            scraped, failing = {}, []
            for member in members:
                text = patroni.get(member, "/metrics") or ""
                samples = [line for line in text.splitlines() if line and not line.startswith("#")]
                if any(re.match(r"patroni_postgres_running\{.*\} 1(\.0)?$", line) for line in samples):
                    scraped[member.name] = len(samples)
                else:
                    failing.append(member.name)
            if not failing:
                exporters = self.stack.monitoring.scrape_exporters(members)
                if all(exporters.values()):
                    return done(f"scraped /metrics of {len(scraped)} instances and of their postgres_exporters "
                                f"(pg_up 1), listed in {self.stack.monitoring.dir / 'targets'} for Prometheus",
                                samples=scraped)
                failing = [f"{name}'s postgres_exporter" for name, up in exporters.items() if not up]
            if time.monotonic() > deadline:
                raise RuntimeError(f"/metrics of {', '.join(failing)} does not report PostgreSQL running "
                                   "(patroni_postgres_running 1, pg_up 1)")
            time.sleep(0.2)


def first_failure(members: list[Member], topology: dict[str, Any] | None, status: st.ClusterStatus) -> str | None:
    """The first member that cannot come back by itself (CNPG's unrecoverable phase stands for it)."""
    paused = bool((topology or {}).get("pause"))
    states = {i.name: i.state for i in status.instances_status}
    reasons = [patroni.member_failure(m, m.patroni.running, states.get(m.name), paused) for m in members]
    return next((r for r in reasons if r), None)


def archiving_condition(archiver: Any, primary: str | None) -> st.Condition:
    """CNPG's ContinuousArchiving condition from the primary's pg_stat_archiver row."""
    if primary is None or archiver is None:
        return st.Condition(type="ContinuousArchiving", status="Unknown", reason="NoPrimary" if not primary
                            else "Unreachable")
    archived_wal, archived_at, failed_wal, failed_at = archiver
    if failed_at and (archived_at is None or failed_at > archived_at):
        return st.Condition(
            type="ContinuousArchiving", status="False", reason="ContinuousArchivingFailing",
            message=f"last failed WAL {failed_wal} at {failed_at.isoformat()}",
        )
    message = f"last archived WAL {archived_wal} at {archived_at.isoformat()}" if archived_wal else "nothing yet"
    return st.Condition(type="ContinuousArchiving", status="True", reason="ContinuousArchivingSuccess",
                        message=message)
