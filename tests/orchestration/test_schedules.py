"""The periodic timer: one cluster's bad stored data is reported and skipped; the others' schedules run."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared import locks, schedules
from shared.platforms import installed
from shared.platforms.local.platform import LocalPlatform
from shared.settings import Settings
from shared.spec import ClusterSpec, Schedules
from tests.conftest import follow
from tests.scripted_platform import ScriptedPlatform


@pytest.fixture()
def scripted() -> Iterator[ScriptedPlatform]:
    with installed(ScriptedPlatform()) as platform:
        yield platform


def test_a_bad_schedule_stored_for_one_cluster_never_stops_the_others(
    devhost: Any, api: httpx.Client, scripted: ScriptedPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    good = ClusterSpec.model_validate({"name": "pg-sched-good", "namespace": "sched",
                                       "schedules": {"backupVerification": "0 0 * * * *"}})
    # stored before schedules were checked at the door: what validation would refuse today
    bad = good.model_copy(update={"name": "pg-sched-bad",
                                  "schedules": Schedules.model_construct(backup_verification="a b c d e f")})
    scripted.clusters = {("sched", "pg-sched-bad"): bad, ("sched", "pg-sched-good"): good}
    storage = Settings.from_env().storage_connection
    timer = next(t for t in devhost.timers.timers if t.name == "run_schedules")
    holder = None
    with caplog.at_level(logging.ERROR, logger="pgha.schedules"):
        for _ in range(3):  # the timer's own thread may look at the same moment; try again then
            for name in ("pg-sched-bad", "pg-sched-good"):
                schedules.mark_checked(storage, "sched", name, datetime.now(UTC) - timedelta(hours=2))
            timer.fire()
            holder = locks.holder(storage, "sched", "pg-sched-good")
            if holder is not None:
                break
    assert holder is not None and holder.operation_id.startswith("verify-sched-pg-sched-good-")
    assert any("schedules of sched/pg-sched-bad skipped this turn" in r.getMessage() for r in caplog.records)
    # ended here, on this test's platform: a run left going would call the next test's
    assert follow(api, f"/api/operations/{holder.operation_id}").status_code in (200, 422)


def test_a_cluster_record_that_does_not_read_is_left_out_of_the_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PGHA_HOME", str(tmp_path))
    platform = LocalPlatform(Settings.from_env())
    for name, record in (("a", {"spec": {"name": "a", "namespace": "ns"}}), ("b", {"spec": {"name": "B!"}}),
                         ("c", "not json")):
        path = tmp_path / "clusters" / "ns" / name / "cluster.json"
        path.parent.mkdir(parents=True)
        path.write_text(record if isinstance(record, str) else json.dumps(record))
    with caplog.at_level(logging.ERROR, logger="pgha.platform"):
        assert [s.name for s in platform.list_clusters()] == ["a"]
    assert sum("does not read, left out" in r.getMessage() for r in caplog.records) == 2
    kept = platform.delete_app_secret(ClusterSpec(name="a", namespace="ns"))  # b or c may use the same secret
    assert kept.outcome == "skipped" and "does not read" in kept.detail


def test_the_timer_never_holds_the_host_while_the_platform_or_storage_is_slow(
    devhost: Any, api: Any, scripted: ScriptedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timer runs on the host's loop, which every HTTP route shares: a listing (or a storage call retried by
    the SDK) that takes seconds must not make the routes wait for it. A teardown asked while Azurite was down
    was once answered in 42 s instead of about 5, behind the timer's blocked turn."""
    def slow_listing() -> Iterator[ClusterSpec]:  # a generator, as both platforms' are: slow as it is iterated
        time.sleep(2.0)
        yield from []

    monkeypatch.setattr(scripted, "list_clusters", slow_listing)
    timer = next(t for t in devhost.timers.timers if t.name == "run_schedules")
    firing = threading.Thread(target=timer.fire)
    firing.start()
    time.sleep(0.5)  # the turn is in its listing by now
    asked = time.monotonic()
    answer = api.get("/api/operations/verify-sched-none-20260101T000000Z-000000")  # an async route: the loop's
    took = time.monotonic() - asked
    firing.join()
    assert answer.status_code == 404, answer.text
    assert took < 1.0, f"a route waited {took:.1f} s for the timer's turn"
