"""How pgha reads CNPG's progress through a change (shared/platforms/aks/updates.py), on objects shaped as the
API server returns them for cloudnative-pg v1.30.0: the Cluster's status (api/v1/cluster_types.go
ClusterStatus: phase, phaseReason, currentPrimary, targetPrimary, image, resizingPVC, pgDataImageInfo), its
pods (core/v1 Pod, container `postgres`), its PVCs (cnpg.io/pvcRole PG_DATA / PG_WAL, status.capacity) and
its major-upgrade Job (cnpg.io/jobRole major-upgrade, batch/v1 Failed condition)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.changes import Change, ChangePlan
from shared.platforms.aks import updates
from shared.platforms.aks.operator import Operator, image_version
from shared.spec import parse_spec
from shared.status import InstanceSettings

OLD = "ghcr.io/cloudnative-pg/postgresql:17.6-system-trixie"
NEW = "ghcr.io/cloudnative-pg/postgresql:17.7-system-trixie"
SPEC = parse_spec({"name": "pg", "instances": 2, "imageName": NEW, "storage": {"size": "4Gi"},
                   "postgresql": {"parameters": {"shared_buffers": "64MB"}}})


def cluster(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "pg"}, "status": {
        "phase": "Cluster in healthy state", "currentPrimary": "pg-1", "targetPrimary": "pg-1", "image": NEW,
        **status}}


def pod(name: str, image: str = NEW, ready: bool = True, cpu: str = "2") -> dict[str, Any]:
    """A pod as CNPG makes it: requests and limits from spec.resources (8Gi and 2 CPUs unless said)."""
    resources = {"requests": {"memory": "8Gi", "cpu": cpu}, "limits": {"memory": "8Gi", "cpu": cpu}}
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "postgres", "image": image,
                                                                  "resources": resources}]},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pvc(name: str, capacity: str, role: str = "PG_DATA") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"cnpg.io/pvcRole": role}},
            "status": {"capacity": {"storage": capacity}}}


def in_force(name: str, pending: bool = False, value: str = "64MB") -> InstanceSettings:
    pages = str(int(value.removesuffix("MB")) * 128)  # pg_settings: shared_buffers in 8kB pages
    return InstanceSettings(name=name, values={"shared_buffers": value}, base={"shared_buffers": (pages, "8kB")},
                            pending_restart=["shared_buffers"] if pending else [])


PODS = [pod("pg-1"), pod("pg-2")]
PVCS = [pvc("pg-1", "4Gi"), pvc("pg-2", "4Gi")]
SETTINGS = [in_force("pg-1"), in_force("pg-2")]


def test_done_when_every_pod_runs_the_spec_and_the_cluster_is_healthy() -> None:
    rollout = updates.rollout(SPEC, cluster(), PODS, PVCS, SETTINGS, None)
    assert rollout.state == "done" and rollout.waiting == []


@pytest.mark.parametrize(("status", "pods", "pvcs", "settings", "waiting"), [
    ({}, [pod("pg-1"), pod("pg-2", OLD)], PVCS, SETTINGS, [f"pg-2 runs {OLD}, not {NEW}"]),
    # just applied: CNPG has not reconciled it yet, status.image and the pods still say the old image
    ({"image": OLD}, [pod("pg-1", OLD), pod("pg-2", OLD)], PVCS, SETTINGS,
     [f"pg-1 runs {OLD}, not {NEW}", f"pg-2 runs {OLD}, not {NEW}"]),
    ({}, [pod("pg-1"), pod("pg-2", ready=False)], PVCS, SETTINGS, ["pg-2 not ready"]),
    ({}, [pod("pg-1")], PVCS, SETTINGS[:1], ["1 of 2 instances"]),
    ({"targetPrimary": "pg-2"}, PODS, PVCS, SETTINGS, ["primary pg-1, target pg-2"]),
    ({}, PODS, PVCS, [in_force("pg-1", pending=True, value="32MB"), in_force("pg-2")],
     ["pg-1: shared_buffers='32MB (pending restart)' (asked '64MB')", "pg-1: pending_restart for shared_buffers"]),
    ({"resizingPVC": ["pg-2"]}, PODS, [pvc("pg-1", "4Gi"), pvc("pg-2", "2Gi")], SETTINGS,
     ["volume pg-2 resizing", "volume pg-2 is 2Gi, asked 4Gi"]),
    ({"pgDataImageInfo": {"image": OLD, "majorVersion": 16}}, PODS, PVCS, SETTINGS,
     ["the data directory is PostgreSQL 16, not yet 17"]),
])
def test_what_is_not_yet_rolled_out_is_said_in_words(status: dict[str, Any], pods: list[dict[str, Any]],
                                                      pvcs: list[dict[str, Any]], settings: list[InstanceSettings],
                                                      waiting: list[str]) -> None:
    rollout = updates.rollout(SPEC, cluster(**status), pods, pvcs, settings, None)
    assert rollout.waiting == waiting and rollout.state == "rolling"


def test_resources_are_rolled_out_when_every_pod_requests_them() -> None:
    spec = parse_spec({"name": "pg", "instances": 2, "resources": {"memory": "8Gi", "cpu": "2500m"}})
    before = [pod("pg-1"), pod("pg-2")]
    assert updates.rollout(spec, cluster(image=None), before, [], [], None).waiting == [
        f"{n} requests {{'memory': '8Gi', 'cpu': '2'}}, not {{'memory': '8Gi', 'cpu': '2500m'}}"
        for n in ("pg-1", "pg-2")]
    rolled = [pod("pg-1", cpu="2500m"), pod("pg-2", cpu="2500m")]
    assert updates.rollout(spec, cluster(image=None), rolled, [], [], None).state == "done"
    canonical = parse_spec({"name": "pg", "instances": 1, "resources": {"memory": "8192Mi", "cpu": "2000m"}})
    assert updates.rollout(canonical, cluster(image=None), [pod("pg-1")], [], [], None).state == "done"


def test_a_wal_volume_is_measured_against_wal_storage_and_bytes_count() -> None:
    spec = parse_spec({"name": "pg", "instances": 1, "walStorage": {"size": "2Gi"}})
    small = [pvc("pg-1", "2Gi"), pvc("pg-1-wal", str(1024 ** 3), "PG_WAL")]
    assert updates.rollout(spec, cluster(image=None), [pod("pg-1")], small, [], None).waiting == [
        f"volume pg-1-wal is {1024 ** 3}, asked 2Gi"]


def test_cnpgs_phases_decide_the_state() -> None:
    upgrading = cluster(phase="Upgrading cluster",
                        phaseReason="Restarting instance pg-2, because: Postgres needs a restart to apply some "
                                    "configuration changes")
    rolling = updates.rollout(SPEC, upgrading, PODS, PVCS, SETTINGS, None)
    assert rolling.state == "rolling" and rolling.describe().startswith("Upgrading cluster: Restarting instance pg-2")
    waiting = cluster(phase="Waiting for user action", phaseReason="User must issue a supervised switchover")
    assert updates.rollout(SPEC, waiting, PODS, PVCS, SETTINGS, None).state == "waiting for user"
    catalog = cluster(phase="Cluster has incomplete or invalid image catalog", phaseReason="no image for 19")
    assert updates.rollout(SPEC, catalog, PODS, PVCS, SETTINGS, None).failure == (
        "Cluster has incomplete or invalid image catalog: no image for 19")


def test_a_failed_major_upgrade_job_is_the_end_and_says_how_to_roll_back() -> None:
    job = {"metadata": {"name": "pg-1-major-upgrade", "labels": {"cnpg.io/jobRole": "major-upgrade"}},
           "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}
    said = updates.major_upgrade_failure([job], OLD)
    assert said is not None and "pg-1-major-upgrade failed" in said and f"set imageName back to {OLD}" in said
    upgrading = cluster(phase="Upgrading Postgres major version", pgDataImageInfo={"image": OLD, "majorVersion": 16})
    ended = updates.rollout(SPEC, upgrading, [], PVCS, [], None, [job])
    assert ended.failure == said and ended.major_upgrade_failed and ended.previous_image == OLD
    assert not updates.rollout(SPEC, upgrading, [], PVCS, [], None).major_upgrade_failed
    running = {**job, "status": {"active": 1}}
    other = {**job, "metadata": {"name": "pg-1-initdb", "labels": {"cnpg.io/jobRole": "initdb"}}}
    assert updates.major_upgrade_failure([running, other], OLD) is None


def test_settings_are_read_from_one_json_answer() -> None:
    """psql prints json_agg's array on one line: values holding `|` survive, pending_restart is a JSON boolean,
    pg_settings' mixed-case names (TimeZone) are asked and answered in the spec's lower case."""
    command = updates.settings_query(["shared_buffers", "timezone", "bad'; DROP TABLE x; --"])
    assert command[:2] == ["psql", "-XAtq"] and "'{shared_buffers,timezone}'::text[]" in command[-1]
    assert "lower(name) = ANY(" in command[-1]
    answer = ('[["log_line_prefix", "%t|%p|", "%t|%p|", null, false], ["max_connections", "100", "100", null, true],'
              ' ["shared_buffers", "64MB", "8192", "8kB", false], ["timezone", "UTC", "UTC", null, false]]\n')
    read = updates.read_settings("pg-1", ["log_line_prefix", "shared_buffers", "timezone", "work_mem"], answer)
    assert read.values == {"log_line_prefix": "%t|%p|", "shared_buffers": "64MB", "timezone": "UTC", "work_mem": None}
    assert read.base["shared_buffers"] == ("8192", "8kB") and read.pending_restart == ["max_connections"]
    assert updates.read_settings("pg-1", ["work_mem"], "[]\n").values == {"work_mem": None}
    broken = updates.read_settings("pg-1", ["work_mem"], "psql: error: no answer")
    assert broken.error is not None and broken.error.startswith("pg_settings did not read")


@pytest.mark.parametrize(("operator", "refused"), [("1.25.2", True), ("1.26.0", False), ("1.30.0", False)])
def test_a_major_upgrade_needs_an_operator_that_does_it_in_place(operator: str, refused: bool) -> None:
    image = f"ghcr.io/cloudnative-pg/cloudnative-pg:{operator}"
    plan = ChangePlan(changes=[Change(field="imageName", kind="major", before=OLD, after=NEW)])
    verdict = updates.weigh_changes(plan, Operator(image=image, version=image_version(image), plugin=True))
    assert verdict.rolled_by == "operator" and bool(verdict.refused) == refused
    rolling = ChangePlan(changes=[Change(field="postgresql.parameters.shared_buffers", kind="rolling")])
    operator_ = Operator(image=image, version=image_version(image), plugin=True)
    assert updates.weigh_changes(rolling, operator_).refused == []


def test_a_change_that_remakes_pods_is_done_only_once_each_pod_is_new() -> None:
    """Placement or the default image back: nothing in CNPG's status says the roll has begun, so the run holds
    the pods' uids from before the apply (a pod made again has a new uid) and waits until none is left."""
    from orchestrations.update_cluster import kept

    old = [{**pod("pg-1"), "metadata": {"name": "pg-1", "uid": "a"}}, {**pod("pg-2"), "metadata": {"name": "pg-2",
                                                                                                 "uid": "b"}}]
    rollout = updates.rollout(SPEC, cluster(), old, PVCS, SETTINGS, None)
    assert rollout.state == "done" and rollout.pods == {"pg-1": "a", "pg-2": "b"}
    assert kept(rollout, {"a", "b"}) == ["pg-1 not yet recreated", "pg-2 not yet recreated"]
    half = updates.rollout(SPEC, cluster(), [old[0], {**old[1], "metadata": {"name": "pg-2", "uid": "c"}}], PVCS,
                           SETTINGS, None)
    assert kept(half, {"a", "b"}) == ["pg-1 not yet recreated"] and kept(half, set()) == []


def test_the_primarys_wait_is_answered_as_its_pod_and_the_settings_need() -> None:
    """An in-place restart applies settings only: a primary whose pod runs another image needs a switchover;
    a decrease of a hot-standby-sensitive setting is the primary's first, so never a switchover then."""
    from orchestrations.update_cluster import primary_method

    waiting = cluster(phase="Waiting for user action")
    outdated = updates.rollout(SPEC, waiting, [pod("pg-1", OLD), pod("pg-2")], PVCS, SETTINGS, None)
    assert outdated.outdated == ["pg-1"] and outdated.to_restart == ["pg-1"]
    settings_only = updates.rollout(SPEC, waiting, PODS, PVCS, [in_force("pg-1", pending=True), in_force("pg-2")],
                                    None)
    assert settings_only.to_restart == ["pg-1"] and settings_only.outdated == []
    assert primary_method(SPEC, ChangePlan(), outdated) == "switchover"
    assert primary_method(SPEC, ChangePlan(), settings_only) == "restart"  # the spec's primaryUpdateMethod
    decrease = ChangePlan(changes=[Change(field="postgresql.parameters.max_connections", kind="rolling",
                                          before="200", after="100")])
    assert decrease.decreases_hot_standby_setting
    assert primary_method(SPEC.model_copy(update={"primary_update_method": "switchover"}), decrease,
                          settings_only) == "restart"
    upgrading = updates.rollout(SPEC, cluster(pgDataImageInfo={"image": OLD, "majorVersion": 17}), PODS, PVCS,
                                SETTINGS, None)
    assert upgrading.previous_image == OLD  # what a failed major upgrade is rolled back to
