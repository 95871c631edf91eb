"""Histories written before the typed runs still read: every input and activity payload the previous
starters and runbooks wrote (at 7e38cb9, in their camelCase JSON) parses into today's models."""

from __future__ import annotations

from typing import Any

import pytest

from activities import typed
from shared import payloads
from shared.runs import INPUTS
from shared.spec import ClusterSpec

SPEC = ClusterSpec.model_validate({"name": "pg1", "instances": 3}).dump()
OPTIONS = {"readyTimeoutSeconds": 600, "pollSeconds": 0.5, "activityAttempts": 3, "activityRetrySeconds": 2,
           "backupTimeoutSeconds": 1800, "backupPatienceSeconds": 120, "restoreTimeoutSeconds": 1800,
           "approvalTimeoutSeconds": 900, "alertGraceSeconds": 30, "alertRecoveryTimeoutSeconds": 300}
RUN = {"operationId": "deploy-default-pg1-x", "namespace": "default", "name": "pg1", "options": OPTIONS,
       "requestedAt": "2026-12-01T00:00:00+00:00", "callback": False}
ALERT = {"alertId": "a", "rule": "r", "severity": "Sev2", "signalType": "Metric", "condition": "Fired",
         "monitoringService": "Prometheus", "firedAt": "2026-12-01T00:00:00Z", "targets": [], "labels": {},
         "expression": None, "value": None, "metrics": []}
REPORT = {"operationId": "x", "runbook": "restore_cluster", "cluster": {"namespace": "default", "name": "pg1"},
          "status": "canceled", "startedAt": "2026-12-01 00:00:00+00:00", "endedAt": "2026-12-01T00:05:00+00:00",
          "durationSeconds": None, "steps": [], "error": "terminated: …"}

OLD_INPUTS: list[tuple[str, dict[str, Any]]] = [
    ("deploy_cluster", {**RUN, "spec": SPEC}),
    ("teardown_cluster", {**RUN, "deleteBackups": True}),
    ("verify_backups", {**RUN, "verify": {"backup": "new", "windowHours": 168, "restoreTest": False, "checks": []}}),
    ("verify_backups", {**RUN, "verify": {"backup": "latest", "restoreTest": True}}),  # a schedule's
    ("verify_backups", {**RUN, "verify": {"backup": "new"}, "ownsLock": False, "lockId": "alert-1"}),  # an alert's
    ("restore_cluster", {**RUN, "restore": {"checks": [], "instances": 1}, "ownsLock": False}),  # a verification's
    ("restore_cluster", {**RUN, "restore": {"name": None, "instances": 1, "targetTime": None, "targetLsn": None,
                                            "keep": False, "checks": []}, "keptSource": SPEC}),
    ("failover_drill", {**RUN, "drill": {"mode": "graceful", "dryRun": False}}),
    ("failover_drill", {**RUN, "drill": {"mode": "graceful"}}),  # a schedule's
    ("respond_to_alert", {**RUN, "alert": ALERT, "playbook": "primaryUnavailable", "policy": "approval",
                          "ownsLock": False, "busyWith": {"operationId": "drill-x", "runbook": "failover_drill"}}),
    ("compensate_run", {**RUN, "terminated": {"operationId": "x", "runbook": "restore_cluster", "timeoutSeconds": 300,
                                              "report": REPORT, "restoreCluster": "pg1-r1"},
                        "ownsLock": True, "lockId": "x"}),
]


@pytest.mark.parametrize(("runbook", "old"), OLD_INPUTS)
def test_an_old_run_input_reads(runbook: str, old: dict[str, Any]) -> None:
    parsed = INPUTS[runbook].model_validate(old)
    assert parsed.operation_id == old["operationId"] and parsed.options.poll_seconds == 0.5


OLD_PAYLOADS: list[tuple[type, Any]] = [
    (payloads.Preflight, SPEC),  # the deploy's pre-flight got the spec alone
    (payloads.Preflight, {"spec": SPEC, "purpose": "teardown", "deleteBackups": True}),
    (payloads.OnRun, {"spec": SPEC, "operationId": "x"}),
    (payloads.WriteProbe, {"spec": SPEC, "operationId": "x", "maxSeconds": 180}),
    (payloads.LostWrites, {"spec": SPEC, "operationId": "x", "acknowledged": [1, 2, 3]}),
    (payloads.DeletePrimary, {"spec": SPEC, "mode": "crash"}),
    (payloads.Promote, {"spec": SPEC, "instance": "pg1-1"}),
    (payloads.StartBackup, {"spec": SPEC, "backupName": "pg1-b1"}),
    (payloads.InventoryRequest, {"spec": SPEC}),
    (payloads.InventoryRequest, {"spec": SPEC, "backupId": "20261201T000000"}),
    (payloads.InventoryRequest, {"spec": SPEC, "choose": "random", "windowHours": 168, "seed": "x"}),
    (payloads.RecoveryTarget, {"spec": SPEC, "targetTime": None, "targetLsn": "0/3000060"}),
    (payloads.BackupRef, {"namespace": "default", "name": "pg1", "backupName": "pg1-b1"}),
    (payloads.DeleteCluster, {"namespace": "default", "name": "pg1", "graceful": False}),
    (payloads.SqlChecks, {"namespace": "default", "name": "pg1-r1", "checks": [
        {"name": "database answers", "query": "SELECT current_database()", "expected": "appdb", "database": "appdb"}]}),
    (payloads.ReleaseLock, {"namespace": "default", "name": "pg1", "operationId": "x"}),
]


@pytest.mark.parametrize(("kind", "old"), OLD_PAYLOADS)
def test_an_old_activity_payload_reads(kind: type, old: Any) -> None:
    assert kind.model_validate(old)


def test_an_activity_on_a_spec_reads_the_spec_alone_and_the_spec_wrapped() -> None:
    @typed
    def name_of(spec: ClusterSpec) -> str:
        return spec.name

    assert name_of(spec=SPEC) == name_of(spec={"spec": SPEC, "operationId": "x"}) == "pg1"
