"""The Platform port: every step of the runbook that touches where PostgreSQL runs.

Activities call this port and nothing below it; `platforms/local` (Patroni on this machine) and
`platforms/aks` (CNPG on AKS) are its adapters. Every method is idempotent: the durable runtime
delivers activities at least once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import psycopg
from azure.storage.blob import ContainerClient

from shared.backups import Backup
from shared.doctor import Check, Diagnosis, Purpose
from shared.logs import redact
from shared.spec import ClusterSpec
from shared.status import ClusterStatus

log = logging.getLogger("pgha.platform")
OutcomeKind = Literal["done", "unchanged", "skipped"]


@dataclass(frozen=True)
class Outcome:
    """What one runbook step did, in words an operator reads in the report."""

    outcome: OutcomeKind
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def done(detail: str, **data: Any) -> Outcome:
    return Outcome("done", detail, data)


def unchanged(detail: str, **data: Any) -> Outcome:
    return Outcome("unchanged", detail, data)


def skipped(detail: str, **data: Any) -> Outcome:
    return Outcome("skipped", detail, data)


class PreflightFailed(RuntimeError):
    """A pre-flight check refused the request before anything was made."""


def preflight_outcome(checks: list[Check], settled: ClusterSpec, headline: tuple[str, ...] = ()) -> Outcome:
    """A pre-flight's answer from the doctor's checks: refused on any FAIL, with the failing checks' lines;
    else what the report keeps: every check's line, and in the detail the warnings, then the `headline`
    checks (what the platform found that the run goes on with)."""
    diagnosis = Diagnosis(platform="", checks=checks)
    if diagnosis.failed:
        raise PreflightFailed(diagnosis.refusal())
    warnings = [f"{c.name}: {c.detail}" for c in checks if c.verdict == "WARN"]
    found = [f"{c.name}: {c.detail}" for c in checks if c.verdict == "PASS" and c.name in headline]
    passed = sum(c.verdict == "PASS" for c in checks)
    detail = "; ".join([*warnings, *found, f"{passed} of {len(checks)} checks passed"])
    return done(detail, spec=settled.dump(), backupMethod=settled.backup.method, checks=[c.line() for c in checks])


def unreadable(record: str, err: Exception) -> None:
    """A cluster record that does not read: said in the log (redacted), so a listing goes on without it."""
    log.error("cluster record %s does not read, left out: %s", record, redact(f"{type(err).__name__}: {err}")[:400])


Role = Literal["rw", "ro"]


class Platform(Protocol):
    name: str

    # the doctor's checks; `preflight` runs those a runbook needs, refuses on a FAIL, and answers the spec
    # the run goes on with (data["spec"]), settled against the platform
    def diagnose(self, spec: ClusterSpec, purpose: Purpose = "doctor", delete_backups: bool = False) -> list[Check]: ...
    def preflight(self, spec: ClusterSpec, purpose: Purpose = "deploy", delete_backups: bool = False) -> Outcome: ...
    def ensure_namespace(self, spec: ClusterSpec) -> Outcome: ...
    def preflight_backup_destination(self, spec: ClusterSpec) -> Outcome: ...
    def ensure_app_secret(self, spec: ClusterSpec, created_by: str | None = None) -> Outcome: ...
    def configure_operator(self, spec: ClusterSpec) -> Outcome: ...
    def configure_monitoring(self, spec: ClusterSpec) -> Outcome: ...
    def verify_monitoring(self, spec: ClusterSpec) -> Outcome: ...
    def ensure_backup_identity(self, spec: ClusterSpec) -> Outcome: ...
    def apply_cluster(self, spec: ClusterSpec) -> Outcome: ...
    def cluster_status(self, namespace: str, name: str) -> ClusterStatus: ...
    def apply_owner_secret(self, spec: ClusterSpec) -> Outcome: ...
    def check_zone_spread(self, spec: ClusterSpec) -> Outcome: ...
    def connect(
        self, namespace: str, name: str, role: Role, database: str | None = None
    ) -> AbstractContextManager[psycopg.Connection]: ...
    def switch_wal_and_find_segment(self, spec: ClusterSpec) -> Outcome: ...
    def ensure_scheduled_backup(self, spec: ClusterSpec) -> Outcome: ...
    def expose_endpoints(self, spec: ClusterSpec) -> Outcome: ...
    def stored_spec(self, namespace: str, name: str) -> ClusterSpec | None: ...
    def retained_specs(self, namespace: str, name: str) -> list[ClusterSpec]: ...
    def list_clusters(self) -> Iterator[ClusterSpec]: ...

    # backups
    def start_backup(self, spec: ClusterSpec, name: str) -> Backup: ...
    def get_backup(self, namespace: str, cluster: str, name: str) -> Backup: ...
    def delete_backup(self, namespace: str, cluster: str, name: str) -> Outcome: ...
    def backup_container(self, spec: ClusterSpec, source: bool = False) -> ContainerClient: ...

    # failover drills
    def delete_primary(self, spec: ClusterSpec, mode: str, recreate_after: float = 3.0) -> Outcome: ...
    def promote(self, spec: ClusterSpec, instance: str) -> Outcome: ...

    # alert response: the HA manager is CNPG's operator on AKS, Patroni locally; pgha only checks and
    # restarts it, never promotes behind its back (two managers deciding is how split brains happen)
    def ha_manager_status(self, spec: ClusterSpec) -> Outcome: ...
    def archiving_errors(self, spec: ClusterSpec, limit: int = 5) -> list[str]: ...
    def restore_ha_manager(self, spec: ClusterSpec) -> Outcome: ...

    # teardown
    def remove_endpoints(self, namespace: str, name: str) -> Outcome: ...
    def remove_scheduled_backups(self, namespace: str, name: str) -> Outcome: ...
    def delete_cluster(self, namespace: str, name: str, graceful: bool = True) -> Outcome: ...
    def remaining_volumes(self, namespace: str, name: str) -> int: ...
    def delete_app_secret(self, spec: ClusterSpec) -> Outcome: ...
    def remove_backup_identity(self, spec: ClusterSpec) -> Outcome: ...
    def delete_backups(self, spec: ClusterSpec) -> Outcome: ...
