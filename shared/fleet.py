"""The fleet at a glance: for every cluster, its state and what its last runs proved — the newest verified
backup and its recovery-point age, the last restore test, the last drill's RTO and RPO — read from the
stored reports, with what is failing or stale said in words first."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from shared import objectstore, reports
from shared.logs import redact
from shared.model import Model
from shared.platform import Platform
from shared.spec import ClusterSpec
from shared.status import ClusterStatus

STAMP = r"(\d{8}T\d{6}Z)-[0-9a-f]{6}\.json"
TREND_RUNS = 10  # how many recent runs a trend shows


class LastRun(Model):
    operation_id: str
    status: str
    ended_at: str | None = None
    age_seconds: float | None = None
    figure: str = ""  # what it measured, in words


class Running(Model):
    operation_id: str
    runbook: str
    step: str | None = None
    steps_done: list[str] = Field(default_factory=list)


class TrendPoint(Model):
    operation_id: str
    at: str
    seconds: float


class FleetRow(Model):
    namespace: str
    name: str
    phase: str
    primary: str | None = None
    synchronous_standbys: list[str] = Field(default_factory=list)
    backup: LastRun | None = None
    recovery_point_age_seconds: float | None = None
    recovery_point_limit_seconds: int
    restore_test: LastRun | None = None
    drill: LastRun | None = None
    running: Running | None = None
    problems: list[str] = Field(default_factory=list)  # failing or stale, in words; empty: all is well
    drill_trend: list[TrendPoint] = Field(default_factory=list)  # the worst outage of each recent drill
    restore_trend: list[TrendPoint] = Field(default_factory=list)  # each recent restore test's time


def report_names(connection: str, spec: ClusterSpec) -> list[str]:
    """The JSON reports of this cluster's verifications and drills: two listings by prefix, not the whole
    container."""
    client = objectstore.container(connection, reports.CONTAINER)
    return [n for prefix in ("verify", "failover")
            for n in objectstore.list_names(client, f"{prefix}-{spec.namespace}-{spec.name}-") if n.endswith(".json")]


# a page's blob reads at once: 3 clusters, 3 reports each, within the storage client's pool of 10 connections
# (objectstore.service), which more threads would only churn
CLUSTERS_AT_ONCE, READERS = 3, 3


class Reports:
    """The reports one page reads, each loaded once, and only the cluster's own: an operation id's dashes
    do not say where a namespace ends (`team-a`/`db` and `team`/`a-db`), the report's cluster does."""

    def __init__(self, connection: str, spec: ClusterSpec) -> None:
        self.connection, self.spec, self.loaded = connection, spec, {}

    def get(self, operation: str | None) -> dict[str, Any]:
        if not operation:
            return {}
        if operation not in self.loaded:
            self.loaded[operation] = self._load(operation)
        return self.loaded[operation]

    def prefetch(self, operations: list[str]) -> None:
        """Load these side by side: a row reads up to twenty reports (the last runs and their trends), and one
        after another they made the page wait on each blob in turn."""
        missing = list(dict.fromkeys(o for o in operations if o and o not in self.loaded))
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            self.loaded.update(zip(missing, pool.map(self._load, missing), strict=True))

    def _load(self, operation: str) -> dict[str, Any]:
        report = reports.load(self.connection, operation) or {}
        cluster = report.get("cluster") or {}
        mine = (cluster.get("namespace"), cluster.get("name")) == (self.spec.namespace, self.spec.name)
        return report if mine else {}


def newest(names: list[str], prefix: str, spec: ClusterSpec, count: int = 1) -> list[str]:
    """The newest reports of a runbook (by its operation id's prefix) on this cluster, newest first."""
    pattern = re.compile(f"{re.escape(prefix)}-{re.escape(spec.namespace)}-{re.escape(spec.name)}-{STAMP}")
    found = sorted(((m.group(1), name) for name in names if (m := pattern.fullmatch(name))), reverse=True)
    return [name.removesuffix(".json") for _, name in found[:count]]


def trend(stored: Reports, operations: list[str], measure: Callable[[dict[str, Any]], float | None]
          ) -> list[TrendPoint]:
    """One figure of each run that succeeded, oldest first (what a reader compares against the last one)."""
    points = []
    for operation in reversed(operations):
        report = stored.get(operation)
        value = measure(report.get("result") or {}) if report.get("status") == "succeeded" else None
        if value is not None:
            points.append(TrendPoint(operation_id=operation, at=report.get("endedAt") or "", seconds=value))
    return points


def worst_outage(result: dict[str, Any]) -> float | None:
    return max(reports.rto_by_phase(result).values(), default=None)


def restore_time(result: dict[str, Any]) -> float | None:
    return (result.get("restoreTest") or {}).get("restoreSeconds")


def last_run(stored: Reports, operation_id: str | None, now: datetime) -> tuple[LastRun | None, dict[str, Any]]:
    report = stored.get(operation_id)
    if not report:
        return None, {}
    ended = report.get("endedAt")
    age = (now - datetime.fromisoformat(ended)).total_seconds() if ended else None
    return LastRun(operation_id=report["operationId"], status=report["status"], ended_at=ended,
                   age_seconds=round(age, 1) if age is not None else None), report


def with_figure(run: LastRun | None, figure: str) -> LastRun | None:
    return run.model_copy(update={"figure": figure}) if run else None


def drill_figure(result: dict[str, Any]) -> str:
    words = [f"RTO {v} s" + (f" ({phase})" if phase else "") for phase, v in reports.rto_by_phase(result).items()]
    if "rpoLostWrites" in result:
        words.append(f"RPO {result['rpoLostWrites']} writes lost")
    return ", ".join(words)


def failed_step(report: dict[str, Any], name: str) -> str | None:
    """The detail of the step `name` where it failed, else None."""
    return next((str(s.get("detail", "")) for s in report.get("steps") or []
                 if s.get("name") == name and s.get("outcome") == "failed"), None)


def restore_tested(stored: Reports, verifications: list[str]) -> tuple[str | None, float | None, str | None]:
    """The newest verification that ran a restore test: its sub-run's id and time, or its failure."""
    for operation in verifications:
        report = stored.get(operation)
        test = (report.get("result") or {}).get("restoreTest")
        if test:
            return test.get("operationId"), test.get("restoreSeconds"), None
        failed = failed_step(report, "restore test")
        if failed is not None:
            return None, None, f"the last restore test failed ({failed[:120]})"
    return None, None, None


def row(spec: ClusterSpec, status: ClusterStatus, names: list[str], stored: Reports, limit: int,
        now: datetime, stale_after: float) -> FleetRow:
    """One cluster's row: its state, its last verification, restore test and drill, and its problems."""
    verifications, drills = newest(names, "verify", spec, TREND_RUNS), newest(names, "failover", spec, TREND_RUNS)
    stored.prefetch([*verifications, *drills])
    backup, verified = last_run(stored, next(iter(verifications), None), now)
    result = verified.get("result") or {}
    age = (result.get("inventory") or {}).get("recoveryPointAgeSeconds")
    tested, restored, restore_failed = restore_tested(stored, verifications)
    restore, _ = last_run(stored, tested, now)
    drill, drilled = last_run(stored, next(iter(drills), None), now)
    standbys = [i.name for i in status.instances_status if i.in_sync]
    problems = []
    if not status.healthy:
        problems.append(f"not healthy: {status.phase}")
    if backup is None:
        problems.append("no verified backup")
    elif backup.status != "succeeded":
        problems.append(f"the last backup verification {backup.status}")
    elif backup.age_seconds is not None and backup.age_seconds > stale_after:
        problems.append(f"backup verification stale: {backup.age_seconds / 3600:.0f} h old")
    if age is not None and age > limit:
        problems.append(f"recovery point {age:.0f} s old at the last verification, over its limit of {limit} s")
    if restore_failed:
        problems.append(restore_failed)
    if drill is not None and drill.status != "succeeded":
        refused = failed_step(drilled, "pre-flight")
        # the pre-flight's words begin "drill refused: " themselves
        problems.append(f"the last drill was refused: {refused.removeprefix('drill refused: ')[:160]}"
                        if refused is not None
                        else f"the last drill {drill.status}")
    return FleetRow(
        namespace=spec.namespace, name=spec.name, phase=status.phase, primary=status.current_primary,
        synchronous_standbys=standbys, recovery_point_age_seconds=age, recovery_point_limit_seconds=limit,
        backup=with_figure(backup, (result.get("inventory") or {}).get("backupId") or ""),
        restore_test=with_figure(restore, f"first successful check after {restored} s" if restored else ""),
        drill=with_figure(drill, drill_figure(drilled.get("result") or {})), problems=problems,
        drill_trend=trend(stored, drills, worst_outage),
        restore_trend=trend(stored, verifications, restore_time))


def fleet(platform: Platform, connection: str, limit: int, stale_after: float = 36 * 3600) -> list[FleetRow]:
    """Every cluster's row, what is failing or stale first; the clusters read side by side."""
    now = datetime.now(UTC)
    specs = list(platform.list_clusters())
    with ThreadPoolExecutor(max_workers=CLUSTERS_AT_ONCE) as pool:
        rows = list(pool.map(lambda spec: cluster_row(platform, connection, spec, limit, now, stale_after), specs))
    return sorted(rows, key=lambda r: (not r.problems, r.namespace, r.name))


def cluster_row(platform: Platform, connection: str, spec: ClusterSpec, limit: int, now: datetime,
                stale_after: float) -> FleetRow:
    try:
        status = platform.cluster_status(spec.namespace, spec.name)
        return row(spec, status, report_names(connection, spec), Reports(connection, spec), limit, now, stale_after)
    except Exception as err:  # one cluster that cannot be read is a row that says so, not a failed page
        return FleetRow(namespace=spec.namespace, name=spec.name, phase="unknown", recovery_point_limit_seconds=limit,
                        problems=[f"not read: {type(err).__name__}: {redact(str(err))[:160]}"])
