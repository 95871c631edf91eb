"""The fleet's rows from stored reports, and its page: problems said in words and listed first, each run
linked to its report page with the key, the page refreshing itself only while a run goes on."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import fleet
from shared.fleet import FleetRow, Reports, Running, row
from shared.fleet_html import render_fleet
from shared.spec import parse_spec
from shared.status import HEALTHY, ClusterStatus, InstanceStatus

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SPEC = parse_spec({"name": "pg", "namespace": "db"})


def report(operation: str, status: str, hours_ago: float, cluster: tuple[str, str] = ("db", "pg"),
           **result: Any) -> dict[str, Any]:
    return {"operationId": operation, "status": status, "endedAt": (NOW - timedelta(hours=hours_ago)).isoformat(),
            "cluster": {"namespace": cluster[0], "name": cluster[1]}, "result": result}


def of(names: list[str], spec: Any = None, limit: int = 900, healthy: bool = True) -> FleetRow:
    spec = spec or SPEC
    return row(spec, status(healthy), names, Reports("", spec), limit, NOW, 36 * 3600)


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
    found = of(names)
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
    found = of(names, healthy=False)
    assert found.problems == ["not healthy: Failing over", "backup verification stale: 60 h old",
                              "recovery point 1200 s old at the last verification, over its limit of 900 s",
                              "the last drill failed"]
    assert of([]).problems == ["no verified backup"]


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
    found = of(names)
    assert [p.seconds for p in found.drill_trend] == [4.0, 2.5]  # a failed drill measured nothing to compare
    page = render_fleet([found])
    assert 'aria-label="worst outage of the last 2 runs, oldest first: 4.0 s, 2.5 s"' in page


def test_a_report_of_another_cluster_whose_id_reads_the_same_is_not_taken(stored: dict[str, dict[str, Any]]) -> None:
    """`team-a`/`db` and `team`/`a-db` make the same operation id prefix: the report's cluster decides."""
    operation = "failover-team-a-db-20261202T090000Z-aaaaaa"
    stored[operation] = report(operation, "failed", 1, cluster=("team-a", "db"))
    other = parse_spec({"name": "a-db", "namespace": "team"})
    assert of([f"{operation}.json"], spec=other).drill is None
    mine = parse_spec({"name": "db", "namespace": "team-a"})
    assert of([f"{operation}.json"], spec=mine).problems[-1] == "the last drill failed"


def test_the_last_restore_test_is_the_newest_verification_that_ran_one(stored: dict[str, dict[str, Any]]) -> None:
    newer, older = "verify-db-pg-20261202T100000Z-bbbbbb", "verify-db-pg-20261201T100000Z-aaaaaa"
    stored[newer] = report(newer, "succeeded", 2, inventory={"recoveryPointAgeSeconds": 5.0})  # a scheduled one
    stored[older] = report(older, "succeeded", 26, restoreTest={"operationId": f"{older}-restore",
                                                                "restoreSeconds": 40.0})
    stored[f"{older}-restore"] = report(f"{older}-restore", "succeeded", 26)
    found = of([f"{newer}.json", f"{older}.json"])
    assert found.restore_test and found.restore_test.operation_id == f"{older}-restore"
    failed = report(newer, "failed", 2)
    failed["steps"] = [{"name": "restore test", "outcome": "failed", "detail": "wait ready: timed out"}]
    stored[newer] = failed
    assert "the last restore test failed (wait ready: timed out)" in of([f"{newer}.json", f"{older}.json"]).problems


def test_a_refused_drill_says_why_it_was_refused(stored: dict[str, dict[str, Any]]) -> None:
    operation = "failover-db-pg-20261202T090000Z-aaaaaa"
    stored[operation] = {**report(operation, "failed", 1), "steps": [
        {"name": "pre-flight", "outcome": "failed", "detail": "drill refused: 2/3 instances ready (pg-3 not)"}]}
    assert of([f"{operation}.json"]).problems[-1] == (
        "the last drill was refused: 2/3 instances ready (pg-3 not)")


def test_a_cluster_that_cannot_be_read_is_a_row_that_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """The platform answering for one cluster fails: its row names the error as a problem, and the others are
    read as usual; the page does not fail (rows needing attention by namespace and name)."""
    class Platform:
        def list_clusters(self) -> list[Any]:
            return [parse_spec({"name": "ok", "namespace": "db"}), SPEC]

        def cluster_status(self, namespace: str, name: str) -> ClusterStatus:
            if name == "pg":
                raise RuntimeError("etcd not answering at 127.0.0.1:2379")
            return status().model_copy(update={"name": name})

    monkeypatch.setattr(fleet, "report_names", lambda connection, spec: [])
    rows = fleet.fleet(Platform(), "", 900)  # type: ignore[arg-type]
    assert [(r.name, r.problems) for r in rows] == [
        ("ok", ["no verified backup"]), ("pg", ["not read: RuntimeError: etcd not answering at 127.0.0.1:2379"])]


def test_a_row_reads_its_reports_side_by_side_and_each_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Twenty reports a row, and a page of many clusters every 5 s: one blob after another made the page wait
    on each in turn. Two loads must be in flight together (a barrier of two, which loads one at a time never
    pass), and none is loaded twice."""
    drills = [f"failover-db-pg-20261202T{h:02d}0000Z-aaaaaa" for h in range(10)]
    loads: list[str] = []
    together, counting = threading.Barrier(2, timeout=5), threading.Lock()

    def load(connection: str, operation: str) -> dict[str, Any]:
        with counting:
            loads.append(operation)
            first_two = len(loads) <= 2
        if first_two:
            together.wait()  # BrokenBarrierError after 5 s when nothing loads beside it
        return report(operation, "succeeded", 1, rtoSeconds={"failover": 2.0})

    monkeypatch.setattr(fleet.reports, "load", load)
    found = of([f"{d}.json" for d in drills])
    assert sorted(loads) == sorted(drills), "each report once"
    assert [p.seconds for p in found.drill_trend] == [2.0] * 10
