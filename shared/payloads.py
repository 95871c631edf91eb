"""What each activity is given: the orchestration builds these, the activity reads them back, once.

On the wire they are the plain JSON `dump()` gives. An activity redelivered from a history written before
these models reads the same shapes: a spec alone where a payload now names it `spec` is accepted as such.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from shared.changes import ChangePlan
from shared.credentials import Which
from shared.model import Model
from shared.requests import WINDOW_HOURS, SqlCheck
from shared.spec import ClusterRef, ClusterSpec

Purpose = Literal["doctor", "deploy", "restore", "teardown", "plan"]


class OnSpec(Model):
    """A payload about one cluster, by its spec."""

    spec: ClusterSpec

    @model_validator(mode="before")
    @classmethod
    def _bare_spec(cls, data: Any) -> Any:
        """A spec alone, as the runbooks passed it before these payloads had names."""
        if isinstance(data, dict) and "spec" not in data:
            return {"spec": data}
        return data


class Preflight(OnSpec):
    purpose: Purpose | None = None  # unset: restore for a recovery spec, else deploy
    delete_backups: bool = False


class OnRun(OnSpec):
    """A step that marks what it makes with the run's id (a secret's creator, the probe's rows)."""

    operation_id: str | None = None


class WriteProbe(OnRun):
    max_seconds: float = 180  # the probe stops by itself then, even if no one tells it to


class ProbeSecond(Model):
    """One second of the write probe, as a report's chart draws it."""

    at: str  # the second's start, UTC
    commits: int = 0
    failed: int = 0
    latency_ms: float = 0.0  # the slowest commit acknowledged in that second


class ProbeRecord(Model):
    """What the write probe saw: the ids the database acknowledged, when writes failed ([began, ended]), and
    each second's commits and commit latency (none in records written before pgha kept them)."""

    acknowledged: list[int] = Field(default_factory=list)
    attempted: int = 0
    windows: list[list[str]] = Field(default_factory=list)
    series: list[ProbeSecond] = Field(default_factory=list)


class LostWrites(OnRun):
    acknowledged: list[int] = Field(default_factory=list)


class DeletePrimary(OnSpec):
    mode: Literal["graceful", "crash"] = "graceful"


class Promote(OnSpec):
    instance: str


class Switchover(OnSpec):
    target: str | None = None


class UpdateCheck(OnSpec):
    """An update's pre-flight: the new spec and its change plan."""

    changes: ChangePlan


class RestartInstance(OnSpec):
    instance: str


class OwnerPassword(OnSpec):
    which: Which  # the key of the app secret whose password the owner gets


class Login(OnSpec):
    which: Which


class Revert(OnSpec):
    committed: bool  # whether the new password was committed before the rotation failed


class RotationCheck(OnSpec):
    operation_id: str


class StartBackup(OnSpec):
    backup_name: str


class InventoryRequest(OnSpec):
    backup_id: str | None = None
    choose: Literal["newest", "random"] | None = None
    window_hours: int = WINDOW_HOURS
    seed: str | None = None


class RecoveryTarget(OnSpec):
    target_time: str | None = None
    target_lsn: str | None = None


class BackupRef(ClusterRef):
    backup_name: str


class DeleteCluster(ClusterRef):
    graceful: bool = True


class SqlChecks(ClusterRef):
    checks: list[SqlCheck] = Field(default_factory=list)


class ReleaseLock(ClusterRef):
    operation_id: str
