"""ClusterSpec: the runbook's defaults, and a message naming the field for each invalid one."""

import pytest

from shared.model import SpecError
from shared.spec import ClusterSpec, parse_spec


def test_defaults_follow_the_runbook() -> None:
    spec = parse_spec({"name": "pg-primary"})
    assert spec.instances == 3
    assert spec.synchronous_replicas == 1
    assert spec.bootstrap.database == "appdb"
    assert spec.bootstrap.owner == "app"
    assert spec.bootstrap.secret_name == "db-user-pass"
    assert spec.bootstrap.data_checksums is True
    assert spec.backup.retention_policy == "7d"
    assert spec.backup.container == "backups"
    assert spec.server_name == "pg-primary"
    assert spec.postgresql.pg_hba == ["host all all all scram-sha-256"]
    assert spec.instance_names == ["pg-primary-1", "pg-primary-2", "pg-primary-3"]


def test_camel_case_round_trip() -> None:
    body = {
        "name": "db", "namespace": "team-a", "instances": 5, "synchronousReplicas": 2,
        "postgresql": {"parameters": {"shared_buffers": "256MB"}, "pg_hba": ["host all all 10.0.0.0/8 scram-sha-256"]},
        "backup": {"destinationPath": "https://acct.blob.core.windows.net/pg", "serverName": "db-v2",
                   "method": "plugin", "schedule": "0 15 * ? * *"},
        "walStorage": {"size": "4Gi", "storageClass": "managed-csi"},
        "schedules": {"backupVerification": "0 0 3 * * *"},
    }
    spec = parse_spec(body)
    assert spec.server_name == "db-v2"
    assert spec.backup.container == "pg"
    again = parse_spec(spec.dump())
    assert again == spec


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({}, "name", "Field required"),
        ({"name": "Bad_Name"}, "name", "pattern"),
        ({"name": "db", "instances": 0}, "instances", "greater than or equal to 1"),
        ({"name": "db", "instances": 10}, "instances", "less than or equal to 9"),
        ({"name": "db", "instances": "three"}, "instances", "integer"),
        ({"name": "db", "instances": 2, "synchronousReplicas": 2}, "synchronousReplicas", "at most instances - 1 (1)"),
        ({"name": "db", "storage": {"size": "2TB"}}, "storage.size", "pattern"),
        ({"name": "db", "storage": {"size": "9999999Gi"}}, "storage.size", "pattern"),
        ({"name": "db", "resources": {"cpu": "-1"}}, "resources.cpu", "pattern"),
        ({"name": "db", "postgresql": {"parameters": {"archive_command": "x"}}}, "postgresql.parameters",
         "managed by the operator"),
        ({"name": "db", "postgresql": {"parameters": {"bad name": "x"}}}, "postgresql.parameters", "parameter name"),
        ({"name": "db", "postgresql": {"parameters": {"work_mem": "4MB'; DROP"}}}, "postgresql.parameters",
         "without quotes"),
        ({"name": "db", "postgresql": {"pg_hba": ["allow everyone"]}}, "postgresql.pg_hba", "not a pg_hba rule"),
        ({"name": "db", "endpoints": {"sourceRanges": ["10.0.0.0/33"]}}, "endpoints.sourceRanges", "CIDR"),
        ({"name": "db", "backup": {"destinationPath": "s3://bucket"}}, "backup.destinationPath", "pattern"),
        ({"name": "db", "backup": {"schedule": "0 15 * * *"}}, "backup.schedule", "pattern"),
        ({"name": "db", "backup": {"method": "tape"}}, "backup.method", "barmanObjectStore"),
        ({"name": "db", "bootstrap": {"owner": "App-User"}}, "bootstrap.owner", "pattern"),
        ({"name": "db", "replicas": 3}, "replicas", "not a field of ClusterSpec"),
    ],
)
def test_invalid_field_is_named(body: dict, field: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(body)
    assert caught.value.field == field
    assert words in caught.value.message


def test_not_an_object() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(["name", "db"])
    assert caught.value.field == "body"


def test_spec_is_frozen() -> None:
    spec = ClusterSpec(name="db")
    with pytest.raises(ValueError):
        spec.instances = 5  # type: ignore[misc]
