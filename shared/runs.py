"""A run's input, typed: what the starter hands an orchestration, parsed once when the run starts.

The durable runtime carries it as the plain JSON `dump()` gives (camelCase, as histories written
before these models hold it), and never a secret: a callback URL stays in storage, a password in
its secret. Every default an orchestration uses lives here, in `RunOptions`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shared.changes import ChangePlan
from shared.model import Model
from shared.requests import DrillRequest, RestoreRequest, SwitchoverRequest, VerifyRequest
from shared.spec import ClusterRef, ClusterSpec


class RunOptions(Model):
    """The knobs an orchestration needs (from pgha's settings at the start), so it never reads the
    environment. Its defaults are the settings' defaults (shared/settings.py reads them from here), but for
    poll_seconds, whose setting depends on the platform: 2.0 is what a run read before options carried it."""

    ready_timeout_seconds: int = 600
    poll_seconds: float = 2.0
    activity_attempts: int = 3
    activity_retry_seconds: int = 2
    backup_timeout_seconds: int = 1800
    backup_patience_seconds: int = 120
    restore_timeout_seconds: int = 1800
    drill_timeout_seconds: int = 120
    approval_timeout_seconds: int = 900
    alert_grace_seconds: int = 30
    alert_recovery_timeout_seconds: int = 300


DEFAULTS = RunOptions()  # the one place a run's defaults are written


class BusyWith(Model):
    operation_id: str
    runbook: str


class AlertSummary(Model):
    """What a run and its report keep of an alert (bounded: labels are the sender's to fill)."""

    alert_id: str
    rule: str
    severity: str
    signal_type: str
    condition: str
    monitoring_service: str
    fired_at: str
    targets: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    expression: str | None = None
    value: str | None = None
    metrics: list[str] = Field(default_factory=list)
    description: str | None = None  # what the rule says of it (Alertmanager's annotations.description)


class Terminated(Model):
    """A run the cancel fallback terminated, and what its compensation needs to know of it."""

    operation_id: str
    runbook: str
    timeout_seconds: int
    report: dict[str, Any] | None = None
    restore_cluster: str | None = None


class RunInput(Model):
    """What every run gets: who it is, where, when it was asked for, and under whose lock it runs."""

    operation_id: str
    namespace: str
    name: str = ""
    options: RunOptions = DEFAULTS
    requested_at: str | None = None
    callback: bool = False
    owns_lock: bool = True
    lock_id: str | None = None  # the lock's holder when a sub-run acts under its parent's

    @property
    def cluster(self) -> ClusterRef:
        return ClusterRef(namespace=self.namespace, name=self.name)

    @property
    def lock_holder(self) -> str:
        return self.lock_id or self.operation_id


class DeployInput(RunInput):
    spec: ClusterSpec


class TeardownInput(RunInput):
    delete_backups: bool = False


class VerifyInput(RunInput):
    verify: VerifyRequest = VerifyRequest()


class RestoreInput(RunInput):
    restore: RestoreRequest = RestoreRequest()
    kept_source: ClusterSpec | None = None  # a cluster torn down with its backups kept: its recorded spec


class DrillInput(RunInput):
    drill: DrillRequest = DrillRequest()


class SwitchoverInput(RunInput):
    switchover: SwitchoverRequest = SwitchoverRequest()


class UpdateInput(RunInput):
    spec: ClusterSpec  # the new spec: the stored one with the request's merge patch
    changes: ChangePlan
    base: ClusterSpec | None = None  # the stored spec the plan was made from (a run refuses if it changed)


class RotateInput(RunInput):
    """The run finds every cluster of the namespace that uses the app secret (its pre-flight)."""


class AlertInput(RunInput):
    alert: AlertSummary
    playbook: str
    policy: Literal["auto", "approval"] = "auto"
    busy_with: BusyWith | None = None


class CompensateInput(RunInput):
    terminated: Terminated


# each runbook's input, by its orchestrator's name: what its starter builds and its Runbook parses
INPUTS: dict[str, type[RunInput]] = {
    "deploy_cluster": DeployInput, "teardown_cluster": TeardownInput, "verify_backups": VerifyInput,
    "restore_cluster": RestoreInput, "failover_drill": DrillInput, "switchover_cluster": SwitchoverInput,
    "update_cluster": UpdateInput, "rotate_credentials": RotateInput,
    "respond_to_alert": AlertInput, "compensate_run": CompensateInput,
}
