"""The fleet's rows from stored reports, and its page: problems said in words and listed first, each run
linked to its report page with the key, the page refreshing itself only while a run goes on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import fleet
from shared.fleet import FleetRow, Running, row
from shared.fleet_html import render_fleet
from shared.spec import parse_spec
from shared.status import HEALTHY, ClusterStatus, InstanceStatus

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SPEC = parse_spec({"name": "pg", "namespace": "db"})


def report(operation: str, status: str, hours_ago: float, **result: Any) -> dict[str, Any]:
    return {"operationId": operation, "status": status, "endedAt": (NOW - timedelta(hours=hours_ago)).isoformat(),
            "result": result}


@pytest.fixture()
def stored(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    monkeypatch.setattr(fleet.reports, "load", lambda connection, operation: found.get(operation))
    return found


def status(healthy: bool = True) -> ClusterStatus:
    return ClusterStatus(name="pg", namespace="db", phase=HEALTHY if healthy else "Failing over", instances=2,
                         ready_instances=2, current_primary="pg-1",
                         instances_status=[
                             InstanceStatus(name="pg-1", role="primary", ready=True),
                             InstanceStatus(name="pg-2", role="standby", ready=True, sync_state="quorum")])


def test_the_newest_reports_of_the_cluster_make_its_row(stored: dict[str, dict[str, Any]]) -> None:
    names = ["verify-db-pg-20261201T000000Z-aaaaaa.json", "verify-db-pg-20261202T100000Z-bbbbbb.json",
             "verify-db-pg-other-20261202T110000Z-cccccc.json",  # another cluster's, whose name starts the same
             "failover-db-pg-20261202T090000Z-dddddd.json"]
    stored["verify-db-pg-20261202T100000Z-bbbbbb"] = report(
        "verify-db-pg-20261202T100000Z-bbbbbb", "succeeded", 2, inventory={"recoveryPointAgeSeconds": 42.0,
                                                                         "backupId": "20261202T095900"},
        restoreTest={"operationId": "verify-db-pg-20261202T100000Z-bbbbbb-restore", "restoreSeconds": 31.5})
    stored["verify-db-pg-20261202T100000Z-bbbbbb-restore"] = report("verify-db-pg-20261202T100000Z-bbbbbb-restore",
                                                                    "succeeded", 2)
    stored["failover-db-pg-20261202T090000Z-dddddd"] = report(
        "failover-db-pg-20261202T090000Z-dddddd", "succeeded", 3, rtoSeconds={"failover": 3.1, "switchback": 1.0},
        rpoLostWrites=0)
    found = row(SPEC, status(), names, "", 900, NOW, 36 * 3600)
    assert found.problems == [] and found.synchronous_standbys == ["pg-2"] and found.primary == "pg-1"
    assert found.backup and found.backup.operation_id.endswith("bbbbbb") and found.backup.figure == "20261202T095900"
    assert found.recovery_point_age_seconds == 42.0
    assert found.restore_test and "31.5 s" in found.restore_test.figure
    assert found.drill and found.drill.figure == "RTO 3.1 s (failover), RTO 1.0 s (switchback), RPO 0 writes lost"


def test_failing_and_stale_are_said_in_words(stored: dict[str, dict[str, Any]]) -> None:
    names = ["verify-db-pg-20261130T000000Z-aaaaaa.json", "failover-db-pg-20261202T090000Z-dddddd.json"]
    stored["verify-db-pg-20261130T000000Z-aaaaaa"] = report(
        "verify-db-pg-20261130T000000Z-aaaaaa", "succeeded", 60, inventory={"recoveryPointAgeSeconds": 1200.0})
    stored["failover-db-pg-20261202T090000Z-dddddd"] = report("failover-db-pg-20261202T090000Z-dddddd", "failed", 3)
    found = row(SPEC, status(healthy=False), names, "", 900, NOW, 36 * 3600)
    assert found.problems == ["not healthy: Failing over", "backup verification stale: 60 h old",
                              "recovery point 1200 s old, over its limit of 900 s", "the last drill failed"]
    assert row(SPEC, status(), [], "", 900, NOW, 36 * 3600).problems == ["no verified backup"]


def test_the_page_lists_problems_first_links_with_the_key_and_refreshes_while_a_run_goes() -> None:
    quiet = FleetRow(namespace="db", name="a", phase=HEALTHY, recovery_point_limit_seconds=900)
    failing = FleetRow(namespace="db", name="b", phase="Failing over", recovery_point_limit_seconds=900,
                       problems=["not healthy: Failing over"])
    page = render_fleet([failing, quiet], code="k/1")
    assert page.index('data-cluster="db/b"') < page.index('data-cluster="db/a"')
    assert "PROBLEM: not healthy: Failing over" in page and "1 need attention" in page
    assert 'http-equiv="refresh"' not in page
    running = quiet.model_copy(update={"running": Running(operation_id="drill-db-a-1", runbook="failover_drill",
                                                          step="wait new primary", steps_done=["pre-flight: done"])})
    live = render_fleet([running], code="k/1")
    assert 'http-equiv="refresh"' in live and 'href="operations/drill-db-a-1?code=k%2F1"' in live
    assert "<script" not in live and "wait new primary" in live


def test_trends_show_each_recent_run_s_figure_oldest_first(stored: dict[str, dict[str, Any]]) -> None:
    names = [f"failover-db-pg-2026120{day}T090000Z-00000{day}.json" for day in (1, 2, 3)]
    for day, rto, outcome in ((1, 4.0, "succeeded"), (2, 9.5, "failed"), (3, 2.5, "succeeded")):
        operation = f"failover-db-pg-2026120{day}T090000Z-00000{day}"
        stored[operation] = report(operation, outcome, 24 * (3 - day), rtoSeconds={"failover": rto, "switchback": 1.0})
    found = row(SPEC, status(), names, "", 900, NOW, 36 * 3600)
    assert [p.seconds for p in found.drill_trend] == [4.0, 2.5]  # a failed drill measured nothing to compare
    page = render_fleet([found])
    assert 'aria-label="worst outage of the last 2 runs, oldest first: 4.0 s, 2.5 s"' in page
