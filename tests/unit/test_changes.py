"""The change plan of an update: RFC 7386 merge patch, each difference classified as CNPG acts on it, and
what CNPG (or safety) refuses named by its field."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from shared.changes import RESTART_PARAMETERS, merge_patch, patched_spec, plan_changes, same_setting
from shared.model import SpecError
from shared.spec import ClusterSpec

STORED = ClusterSpec(name="pg", postgresql={"parameters": {"shared_buffers": "64MB", "work_mem": "4MB"}})


# RFC 7386 appendix A's test cases (target, patch, result)
@pytest.mark.parametrize(("target", "patch", "result"), [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch_follows_rfc_7386(target: object, patch: object, result: object) -> None:
    assert merge_patch(target, patch) == result


def plan(patch: dict[str, object], major: int | None = 16) -> dict[str, str]:
    return {c.field: c.kind for c in plan_changes(STORED, patched_spec(STORED, patch), major).changes}


def test_each_change_is_classified_as_cnpg_acts_on_it() -> None:
    assert plan({"postgresql": {"parameters": {"shared_buffers": "128MB", "work_mem": "8MB"}}}) == {
        "postgresql.parameters.shared_buffers": "rolling", "postgresql.parameters.work_mem": "online"}
    assert plan({"postgresql": {"parameters": {"work_mem": None}}}) == {"postgresql.parameters.work_mem": "online"}
    assert plan({"instances": 5}) == {"instances": "scale"}
    assert plan({"storage": {"size": "10Gi"}, "walStorage": {"size": "4Gi"}}) == {
        "storage.size": "storage", "walStorage.size": "storage"}
    assert plan({"resources": {"memory": "16Gi"}}) == {"resources.memory": "rolling"}
    assert plan({"imageName": "ghcr.io/cloudnative-pg/postgresql:16.6"}) == {"imageName": "rolling"}
    major = {"imageName": "ghcr.io/cloudnative-pg/postgresql:17.2-bookworm", "backup": {"serverName": "pg-17"}}
    assert plan(major) == {"imageName": "major", "backup.serverName": "major"}
    assert plan({"schedules": {"failoverDrill": "0 0 3 * * 0"}, "drills": {"enabled": True}}) == {
        "drills.enabled": "settings", "schedules.failoverDrill": "settings"}
    assert plan({"postgresql": {"pg_hba": ["host all all 10.0.0.0/8 scram-sha-256"]}}) == {
        "postgresql.pg_hba": "online"}
    assert plan({"instances": 3}) == {}  # the stored value: nothing


def test_the_plan_says_whether_instances_restart() -> None:
    rolling = plan_changes(STORED, patched_spec(STORED, {"postgresql": {"parameters": {"max_connections": "200"}}}),
                           16)
    online = plan_changes(STORED, patched_spec(STORED, {"postgresql": {"parameters": {"work_mem": "8MB"}}}), 16)
    assert rolling.restarts and not online.restarts
    assert "rolling: postgresql.parameters.max_connections unset -> '200'" in rolling.summary()


@pytest.mark.parametrize(("patch", "field", "said"), [
    ({"storage": {"size": "1Gi"}}, "storage.size", "cannot shrink"),
    ({"storage": {"storageClass": "other"}}, "storage.storageClass", "cannot be changed after deploy"),
    ({"bootstrap": {"database": "other"}}, "bootstrap.database", "cannot be changed after deploy"),
    ({"backup": {"destinationPath": "https://x.blob.core.windows.net/other"}}, "backup.destinationPath",
     "cannot be changed after deploy"),
    ({"name": "other"}, "name", "names the cluster"),
    ({"namespace": "other"}, "namespace", "names the cluster"),
    ({"instances": 2, "synchronousReplicas": 2}, "synchronousReplicas", "at most instances - 1"),
    ({"imageName": "ghcr.io/cloudnative-pg/postgresql:15.8"}, "imageName", "major downgrade"),
    ({"imageName": "ghcr.io/cloudnative-pg/postgresql:latest"}, "imageName", "no PostgreSQL version tag"),
    ({"imageName": "ghcr.io/cloudnative-pg/postgresql:17.2", "instances": 5}, "imageName", "goes alone"),
    # pg_upgrade's new system (timeline 1) gets its own archive, as CNPG's docs say; serverName moves only then
    ({"imageName": "ghcr.io/cloudnative-pg/postgresql:17.2"}, "backup.serverName", "new backup.serverName"),
    ({"backup": {"serverName": "other"}}, "backup.serverName", "except with a major upgrade"),
    ({"imageName": "ghcr.io/cloudnative-pg/postgresql:16.6", "primaryUpdateMethod": "switchover",
      "postgresql": {"parameters": {"work_mem": "8MB"}}}, "imageName", "primaryUpdateMethod is switchover"),
])
def test_refused_with_the_field(patch: dict[str, object], field: str, said: str) -> None:
    with pytest.raises(SpecError) as refused:
        plan_changes(STORED, patched_spec(STORED, patch), 16)
    assert refused.value.field == field and said in refused.value.message


def test_resources_rewritten_to_the_same_amount_are_no_change() -> None:
    """CNPG compares resources by amount, so 2000m for 2 CPUs or 8192Mi for 8Gi rolls nothing."""
    assert plan({"resources": {"cpu": "2000m", "memory": "8192Mi"}}) == {}
    assert plan({"resources": {"cpu": "2500m"}}) == {"resources.cpu": "rolling"}


def test_a_major_upgrade_lands_on_16_or_later() -> None:
    """CNPG's webhook refuses an in-place major upgrade to 14 or 15 (collation information it does not carry)."""
    with pytest.raises(SpecError) as refused:
        plan_changes(STORED, patched_spec(STORED, {"imageName": "ghcr.io/cloudnative-pg/postgresql:15.8",
                                                   "backup": {"serverName": "pg15"}}), 14)
    assert refused.value.field == "imageName" and "only to PostgreSQL 16 or later" in refused.value.message


def test_an_image_and_a_parameter_together_are_fine_with_restart() -> None:
    """CNPG's webhook refuses the pair only with primaryUpdateMethod switchover (validateConfigurationChange)."""
    assert plan({"imageName": "ghcr.io/cloudnative-pg/postgresql:16.6",
                 "postgresql": {"parameters": {"work_mem": "8MB"}}}) == {
        "imageName": "rolling", "postgresql.parameters.work_mem": "online"}


def test_restart_parameters_are_postgresqls_own() -> None:
    """The list holds every parameter of context `postmaster` that the installed PostgreSQL describes."""
    postgres = next(Path("/usr/lib/postgresql").glob("*/bin/postgres"), None) or shutil.which("postgres")
    assert postgres, "PostgreSQL is installed by scripts/setup.sh"
    described = subprocess.run([str(postgres), "--describe-config"], capture_output=True, text=True, check=True)
    postmaster = {line.split("\t")[0] for line in described.stdout.splitlines() if line.split("\t")[1] == "postmaster"}
    assert postmaster and postmaster <= RESTART_PARAMETERS, postmaster - RESTART_PARAMETERS
    assert "work_mem" not in RESTART_PARAMETERS


@pytest.mark.parametrize(("asked", "live", "same"), [
    ("64MB", "64MB", True), ("1024kB", "1MB", True), ("1GB", "1024MB", True), ("5min", "300s", True),
    ("on", "on", True), ("true", "on", True), ("64MB", "128MB", False), ("8MB", None, False),
    ("replica", "replica", True), ("100", "200", False),
])
def test_a_value_in_force_is_compared_in_postgresqls_units(asked: str, live: str | None, same: bool) -> None:
    assert same_setting(asked, live) is same


@pytest.mark.parametrize(("asked", "live", "base", "same"), [
    ("65536", "512MB", ("65536", "8kB"), True),  # shared_buffers in its own unit, 8kB pages
    ("16384", "16MB", ("2048", "8kB"), False),  # a bare number is never read as kB
    ("64MB", "64MB", ("8192", "8kB"), True),
    ("1000", "1s", ("1000", "ms"), True),
    ("0.90", "0.9", ("0.9", None), True),
])
def test_a_bare_number_is_read_in_the_parameters_own_unit(asked: str, live: str, base: tuple[str, str | None],
                                                          same: bool) -> None:
    assert same_setting(asked, live, base) is same
