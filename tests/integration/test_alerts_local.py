"""The alert loop on the real local stack, with no payload written by hand: a fault is made on a running
cluster, Prometheus sees it in Patroni's and postgres_exporter's metrics, its rule fires, Alertmanager
posts its webhook to pgha's /api/alerts, and pgha's response ends in a report.

One monitored cluster serves every case, at the quick pace (1 s scrapes and evaluations, `for:` at most
5 s). Each case finds its alert in Alertmanager's API, and its run by the same key pgha gives it. The
session prints the latency table (fault → alert received → report) at its end.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from shared import locks
from shared.alerts import alertmanager_key
from shared.platforms import local_platform
from shared.platforms.local import processes
from shared.platforms.local.patroni import Member
from shared.settings import Settings
from tests.alert_payloads import PROMETHEUS, alert
from tests.conftest import follow, step
from tests.integration.faults import record_fault
from tests.integration.helpers import app_connection, app_password, cluster_state, superuser

pytestmark = pytest.mark.integration
NS = "alerting"
NAME = "it-alert"
SPEC = {"name": NAME, "namespace": NS, "instances": 2, "synchronousReplicas": 1,
        "postgresql": {"parameters": {"shared_buffers": "32MB"}}}


@dataclass(frozen=True)
class Latency:
    case: str
    alert: str
    to_alert: float  # from the fault to pgha receiving the alert (its run's start)
    to_report: float  # from pgha receiving it to the report


LATENCIES: list[Latency] = []


def latency_table() -> str:
    rows = [f"| {x.case} | {x.alert} | {x.to_alert:.1f} s | {x.to_report:.1f} s |" for x in LATENCIES]
    return "\n".join(["| case | alert | fault → alert received | alert → report |", "|---|---|---|---|", *rows])


def members(home: Path) -> list[Member]:
    state = cluster_state(home, NAME, NS)
    base = home / "clusters" / NS / NAME / "members"
    return [Member(n, p["pgPort"], p["restPort"], base / n) for n, p in sorted(state["members"].items())]


def leader(home: Path) -> Member:
    topology = httpx.get(f"{members(home)[0].api}/cluster", timeout=5).json()
    name = next(m["name"] for m in topology["members"] if m["role"] == "leader")
    return next(m for m in members(home) if m.name == name)


def writes_work(home: Path) -> bool:
    try:
        with app_connection(home, NAME, "read-write", NS) as conn:
            conn.execute("SELECT txid_current()")
            conn.commit()
        return True
    except psycopg.Error:
        return False


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class Loop:
    def __init__(self, api: httpx.Client, home: Path) -> None:
        self.api = api
        self.home = home
        ports = local_platform(Settings.from_env()).stack.monitoring.ports()
        assert ports is not None
        self.alertmanager = f"http://127.0.0.1:{ports.alertmanager}"

    def settled(self, timeout: float = 90) -> None:
        """Healthy, writable, no run holding the cluster and no alert firing on it: each case starts from a quiet
        cluster (an alert still firing from the case before would swallow this case's fault, the same alert
        with the same startsAt)."""
        connection = Settings.from_env().storage_connection
        deadline = time.monotonic() + timeout
        while True:
            status = self.api.get(f"/api/clusters/{NAME}", params={"namespace": NS}).json()
            firing = self.firing(None)
            if (status.get("healthy") and not firing and locks.holder(connection, NS, NAME) is None
                    and writes_work(self.home)):
                return
            assert time.monotonic() < deadline, (f"the cluster never settled: {status.get('phase')}, firing "
                                                 f"{[a['labels']['alertname'] for a in firing]}")
            time.sleep(0.5)

    def alertmanager_says(self) -> str:
        """Its notification counters and the tail of its log: what a failed case quotes."""
        metrics = httpx.get(f"{self.alertmanager}/metrics", timeout=5).text.splitlines()
        counters = [line for line in metrics if line.startswith("alertmanager_notification") and "webhook" in line]
        log = local_platform(Settings.from_env()).stack.monitoring.dir / "alertmanager.log"
        return f"{counters}; log: {log.read_text()[-1500:] if log.exists() else '(none)'}"

    def prometheus_says(self) -> str:
        """Its alerts and the Patroni series the primary's rules rest on: what a failed case quotes."""
        monitoring = local_platform(Settings.from_env()).stack.monitoring
        alerts = [(a["labels"]["alertname"], a["state"], a["activeAt"]) for a in monitoring.query("/api/v1/alerts")[
            "alerts"] if a["labels"].get("namespace") == NS]
        series = monitoring.query("/api/v1/query", query=f'{{__name__=~"patroni_postgres_timeline|patroni_primary|'
                                                         f'patroni_postmaster_start_time", namespace="{NS}"}}[40s]')
        seen = {f"{r['metric']['__name__']}/{r['metric']['pod']}": sorted({v for _, v in r["values"]})
                for r in series["result"]}
        return f"Prometheus: alerts {alerts}; series {seen}"

    def firing(self, alertname: str | None) -> list[dict[str, Any]]:
        return local_platform(Settings.from_env()).stack.monitoring.alerts(alertname, NS)

    def fired(self, alertname: str, since: float, timeout: float = 60) -> dict[str, Any]:
        """The alert as Alertmanager holds it, firing since the fault."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.firing(alertname)
            fresh = [a for a in found if epoch(a["startsAt"]) >= since - 2]
            if fresh:
                return fresh[0]
            assert time.monotonic() < deadline, (f"{alertname} never fired: Alertmanager holds {found}; "
                                                 f"{self.prometheus_says()}")
            time.sleep(0.5)

    def report(self, case: str, fired: dict[str, Any], since: float, timeout: float = 180) -> dict[str, Any]:
        """The run pgha started for this alert (found by pgha's own key for it), followed to its report."""
        key = dedupe_key_of(fired)
        deadline = time.monotonic() + 60
        while self.api.get(f"/api/operations/{key}").status_code == 404:
            assert time.monotonic() < deadline, (f"no run {key} for {fired}: was it delivered? "
                                                 f"{self.alertmanager_says()}")
            time.sleep(0.3)
        done = follow(self.api, f"/api/operations/{key}", timeout=timeout)
        report = done.json() if done.status_code == 200 else done.json()["report"]
        LATENCIES.append(Latency(case, fired["labels"]["alertname"], epoch(report["startedAt"]) - since,
                                 epoch(report["endedAt"]) - epoch(report["startedAt"])))
        return report


def dedupe_key_of(fired: dict[str, Any]) -> str:
    return alertmanager_key(fired["fingerprint"], fired["startsAt"])


@pytest.fixture(autouse=True)
def alerts_heard(caplog: pytest.LogCaptureFixture) -> None:
    """What the webhook logged of each alert it answered: shown with a failed case."""
    caplog.set_level(logging.INFO, logger="pgha.alerts")


@pytest.fixture(scope="module")
def loop(devhost: Any, home: Path) -> Iterator[Loop]:
    """The cluster deployed, monitoring at the quick pace, Alertmanager routing this namespace to pgha."""
    platform = local_platform(Settings.from_env())
    os.environ["PGHA_MONITORING_PACE"] = "quick"
    platform.stack.up()  # the configuration rewritten at the quick pace, both daemons reloaded
    try:
        with devhost.client() as api:
            started = api.post("/api/clusters", json=SPEC)
            assert started.status_code == 202, started.text
            assert follow(api, started.headers["Location"]).status_code == 200
            devhost.route_alerts([NS])
            yield Loop(api, home)
            devhost.route_alerts(on=False)
            # gone, so the modules after this one do not carry it (the periodic timer reads every cluster)
            gone = api.delete(f"/api/clusters/{NAME}", params={"namespace": NS, "deleteBackups": "true"})
            assert gone.status_code == 202, gone.text
            assert follow(api, gone.headers["Location"]).status_code == 200
    finally:
        devhost.route_alerts(on=False)
        os.environ.pop("PGHA_MONITORING_PACE", None)
        platform.stack.up()


def test_a_standby_that_stops_replaying_raises_the_lag_alert_and_is_diagnosed(loop: Loop, home: Path) -> None:
    """Replay held back on a standby, as a long report holds it: a reader there keeps a lock that the
    primary's DROP TABLE must take, so replay waits (up to max_standby_streaming_delay, 30 s) while WAL keeps
    arriving. Patroni resumes a replay paused with pg_wal_replay_pause(), so that is no way to stop it."""
    loop.settled()
    standby = next(m for m in members(home) if m.name != leader(home).name)
    with app_connection(home, NAME, "read-write", NS) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS held (x int)")
        conn.execute("CREATE TABLE IF NOT EXISTS lagging (at timestamptz)")
        conn.commit()
    time.sleep(1)  # the standby has replayed the table
    reader = psycopg.connect(host="127.0.0.1", port=standby.pg_port, dbname="appdb", user="app",
                             password=app_password(home, namespace=NS), connect_timeout=5)
    try:
        reader.execute("SELECT count(*) FROM held")  # its transaction stays open, holding the table's lock
        since = time.time()
        with app_connection(home, NAME, "read-write", NS) as conn:
            conn.execute("DROP TABLE held")
            conn.commit()
            deadline = time.monotonic() + 25  # within the 30 s the standby holds replay back
            while time.monotonic() < deadline and not loop.firing("CNPGClusterHighReplicationLag"):
                conn.execute("INSERT INTO lagging VALUES (now())")  # WAL the standby receives, cannot replay
                conn.commit()
                time.sleep(0.5)
        fired = loop.fired("CNPGClusterHighReplicationLag", since, timeout=5)
        # the fault stays until pgha has answered: a lag gone before Alertmanager's group_wait is never sent
        report = loop.report("replay stopped on a standby", fired, since)
    finally:
        reader.close()
    assert report["status"] == "succeeded", report
    assert report["result"]["playbook"] == "replicationLag" and report["result"]["outcome"] == "diagnosed"
    assert report["result"]["alert"]["monitoringService"] == "Alertmanager"
    assert "cnpg_pg_replication_lag" in (report["result"]["alert"]["expression"] or "")
    assert step(report, "diagnose replication")["outcome"] == "done"
    held = next(s for s in report["result"]["diagnosis"]["standbys"] if s["name"] == standby.name)
    assert held["lagBytes"] and held["lagBytes"] > 0, report["result"]["diagnosis"]  # WAL it has not replayed


def test_broken_archiving_raises_its_alert_and_a_backup_follows_the_repair(
    loop: Loop, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """archive_command failing as PostgreSQL sees it; repaired while the response waits."""
    monkeypatch.setenv("PGHA_ALERT_RECOVERY_TIMEOUT_SECONDS", "120")
    loop.settled()
    primary = leader(home)
    try:
        with superuser(home, NAME, primary.pg_port, NS) as conn:
            conn.execute("ALTER SYSTEM SET archive_command = 'false'")
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.5)
            since = time.time()
            conn.execute("SELECT pg_logical_emit_message(false, 'pgha-test', 'x')")
            conn.execute("SELECT pg_switch_wal()")
        fired = loop.fired("PGHAWALArchivingFailing", since)
        key = dedupe_key_of(fired)
        deadline = time.monotonic() + 60
        while (loop.api.get(f"/api/operations/{key}").json().get("customStatus") or {}).get(
                "step") != "wait for archiving to work again":
            assert time.monotonic() < deadline, "the response never waited for archiving"
            time.sleep(0.2)
    finally:  # the storage is back (for the cases after this one too, should this one fail before here)
        with superuser(home, NAME, primary.pg_port, NS) as conn:
            conn.execute("ALTER SYSTEM RESET archive_command")
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.5)
            conn.execute("SELECT pg_switch_wal()")
    report = loop.report("archive_command broken", fired, since, timeout=240)
    assert report["status"] == "succeeded", report
    diagnosis = step(report, "diagnose archiving")
    assert "ContinuousArchiving False" in diagnosis["detail"] and "answers" in diagnosis["detail"]
    assert any("archive command failed" in error for error in diagnosis["data"]["recentErrors"]), diagnosis
    assert report["result"]["backup"]["phase"] == "completed"
    assert report["result"]["outcome"] == "recovered" and report["result"]["action"] == "take a backup"
    # the exporters read the new Backup record: the backup-stale rule's series moves to its end
    stopped_at = epoch(report["result"]["backup"]["stoppedAt"])
    monitoring = local_platform(Settings.from_env()).stack.monitoring
    deadline = time.monotonic() + 15
    query = f'max(cnpg_collector_last_available_backup_timestamp{{namespace="{NS}", cnpg_io_cluster="{NAME}"}})'
    while not (found := monitoring.query("/api/v1/query", query=query)["result"]) or abs(
            float(found[0]["value"][1]) - stopped_at) > 1:
        assert time.monotonic() < deadline, f"Prometheus reads {found}, the backup stopped at {stopped_at}"
        time.sleep(0.5)


def test_a_killed_primary_is_seen_and_patroni_s_recovery_reported(loop: Loop, home: Path) -> None:
    """PostgreSQL killed outside any drill: Patroni fails over within seconds, before any alert can be
    sent; the rule rests on what stays visible (the new timeline), and the response confirms, waits for
    the cluster to be whole and reports what the HA manager did."""
    loop.settled()
    primary = leader(home)
    since = time.time()
    postmaster = processes.read_pid(primary.data_dir / "postmaster.pid")
    assert postmaster, f"{primary.name} runs no PostgreSQL"
    os.kill(postmaster, signal.SIGKILL)
    fired = loop.fired("PGHAPrimaryUnavailable", since)
    report = loop.report("primary's PostgreSQL killed", fired, since)
    assert report["status"] == "succeeded", report
    assert report["result"]["playbook"] == "primaryUnavailable"
    if report["result"]["outcome"] == "deferred":  # CNPGClusterOffline's response came first and holds it
        assert "respond_to_alert" in step(report, "remedy")["detail"], report
        return
    assert report["result"]["outcome"] == "noActionNeeded", report["result"]
    assert step(report, "wait for the cluster to settle")["outcome"] == "done"
    assert "the HA manager recovered before pgha looked" in step(report, "verify")["detail"]
    assert report["result"]["timeline"] >= 1  # a failover's new one, or the same after a restart in place
    loop.settled()


def test_a_paused_ha_manager_is_resumed_once_prometheus_sees_no_primary(
    loop: Loop, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failover off (Patroni paused, as a CNPG operator that is down) and the primary stopped: Prometheus sees
    no running primary, and the response resumes Patroni, which brings a primary back by itself."""
    monkeypatch.setenv("PGHA_ALERT_GRACE_SECONDS", "3")
    monkeypatch.setenv("PGHA_ALERT_RECOVERY_TIMEOUT_SECONDS", "90")
    loop.settled()
    primary = leader(home)
    paused = httpx.patch(f"{primary.api}/config", json={"pause": True}, timeout=5)
    assert paused.status_code == 200 and paused.json()["pause"] is True
    since = time.time()
    assert processes.stop(primary.postmaster, timeout=20, sig=signal.SIGINT)  # fast shutdown; nobody restarts it
    fired = loop.fired("CNPGClusterOffline", since)
    report = loop.report("Patroni paused, primary stopped", fired, since)
    assert report["status"] == "succeeded", report
    result = report["result"]
    assert result["outcome"] == "recovered", result
    assert "paused" in step(report, "check the HA manager")["detail"]
    assert "resumed Patroni" in step(report, "restore the HA manager")["detail"]
    assert writes_work(home)
    assert httpx.get(f"{primary.api}/config", timeout=5).json().get("pause") in (None, False)


def test_an_activity_that_raises_fails_the_response_with_its_reason(loop: Loop, home: Path) -> None:
    """A fault inside an activity: the cluster's internal passwords file is gone, so every activity that asks
    the primary for its status raises. The response ends failed, quoting the error, after its retries."""
    loop.settled()
    passwords = home / "clusters" / NS / NAME / "internal-passwords.json"
    hidden = passwords.with_name("hidden-passwords.json")
    passwords.rename(hidden)
    try:
        started = loop.api.post("/api/alerts", json=alert(PROMETHEUS, "it-raises", NAME, NS))
        assert started.status_code == 202, started.text
        begun = time.monotonic()
        done = follow(loop.api, started.headers["Location"], timeout=120)
        took = time.monotonic() - begun
    finally:
        hidden.rename(passwords)
    assert done.status_code == 422, done.text
    report = done.json()["report"]
    failed = step(report, "confirm")
    assert failed["outcome"] == "failed" and "internal-passwords.json" in failed["detail"], failed
    assert report["result"]["outcome"] == "failed"
    assert took < 30, took
    record_fault("respond_to_alert", "an activity raises (the cluster's internal passwords file removed)",
                 "failed at confirm quoting the error, after 3 attempts", took)
    assert writes_work(home)
