"""tests/contract/admission.py: the fake API server refuses what the real one (with CNPG's CRDs) refuses."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.contract import admission
from tests.contract.admission import CEL_NOT_COVERED, Invalid, admit, cel_compiles, cel_rules, check_schema

FIXTURES = Path(__file__).parent / "fixtures"
VERSIONS = ["1.29", "1.30"]
CLUSTER = "pg-primary-cnpg-r8c7unrw"
CRD_KINDS = {("postgresql.cnpg.io/v1", "Cluster"), ("postgresql.cnpg.io/v1", "Backup"),
             ("postgresql.cnpg.io/v1", "ScheduledBackup"), ("barmancloud.cnpg.io/v1", "ObjectStore")}


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((FIXTURES / name).read_text())


def refused(obj: dict[str, Any], version: str = "1.30", field_validation: str | None = "Strict",
            old: dict[str, Any] | None = None) -> Invalid:
    with pytest.raises(Invalid) as caught:
        admit(obj, field_validation, version, old)
    return caught.value


def invalid_prefix(kind: str, name: str = CLUSTER, group: str = "postgresql.cnpg.io") -> str:
    return f'{kind}.{group} "{name}" is invalid: '


# --- pgha's manifests --------------------------------------------------------------------------------------

PGHA_MANIFESTS = sorted(
    f"{mode}/{path.name}" for mode in ("runbook", "plugin") for path in (FIXTURES / mode).glob("*.yaml")
    if (yaml.safe_load(path.read_text()).get("apiVersion"), yaml.safe_load(path.read_text()).get("kind"))
    in CRD_KINDS)


def test_pgha_manifests_found() -> None:
    assert len(PGHA_MANIFESTS) == 9, PGHA_MANIFESTS
    assert "plugin/objectstore.yaml" in PGHA_MANIFESTS and "runbook/cluster.yaml" in PGHA_MANIFESTS


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", PGHA_MANIFESTS)
def test_pgha_manifests_are_admitted_strictly(name: str, version: str) -> None:
    obj = load(name)
    stored, warnings = admit(copy.deepcopy(obj), "Strict", version)
    assert warnings == []
    assert stored["metadata"] == obj["metadata"]
    pruned, _ = admit(copy.deepcopy(obj), "Strict", version, defaults=False)
    assert pruned == obj  # nothing pgha sends is pruned or changed


@pytest.mark.parametrize("version", VERSIONS)
def test_schema_defaults_are_applied(version: str) -> None:
    stored, _ = admit(load("runbook/cluster.yaml"), "Strict", version)
    assert stored["spec"]["enablePDB"] is True  # CRD default
    assert stored["spec"]["instances"] == 3  # given, not defaulted
    assert stored["spec"]["storage"]["resizeInUseVolumes"] is True  # nested default
    pruned, _ = admit(load("runbook/cluster.yaml"), "Strict", version, defaults=False)
    assert "enablePDB" not in pruned["spec"]
    stored, _ = admit(load("runbook/scheduledbackup.yaml"), "Strict", version)
    assert stored["spec"]["method"] == "barmanObjectStore"


# --- unknown fields ----------------------------------------------------------------------------------------

def with_unknown_fields() -> dict[str, Any]:
    obj = load("plugin/cluster.yaml")
    obj["spec"]["foo"] = 1
    obj["spec"]["storage"]["bar"] = "x"
    obj["spec"]["plugins"][0]["baz"] = True
    obj["metadata"]["qux"] = "y"
    return obj


UNKNOWN = ["metadata.qux", "spec.foo", "spec.plugins[0].baz", "spec.storage.bar"]


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_fields_strict_is_400(version: str) -> None:
    error = refused(with_unknown_fields(), version)
    assert (error.code, error.reason) == (400, "BadRequest")
    assert error.message == "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in UNKNOWN)
    assert error.status()["code"] == 400


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("field_validation", ["Warn", None])
def test_unknown_fields_warn_prunes_and_warns(version: str, field_validation: str | None) -> None:
    stored, warnings = admit(with_unknown_fields(), field_validation, version)
    assert warnings == [f'unknown field "{p}"' for p in UNKNOWN]
    assert "foo" not in stored["spec"] and "bar" not in stored["spec"]["storage"]
    assert "baz" not in stored["spec"]["plugins"][0] and "qux" not in stored["metadata"]
    assert stored["spec"]["storage"]["size"] == "2Gi"


def test_unknown_fields_ignore_prunes_silently() -> None:
    stored, warnings = admit(with_unknown_fields(), "Ignore")
    assert warnings == []
    assert "foo" not in stored["spec"]


def test_bad_field_validation_value() -> None:
    assert refused(load("runbook/cluster.yaml"), field_validation="strict").code == 400


def test_maps_and_preserve_unknown_fields_have_no_unknown_fields() -> None:
    # postgresql.parameters is an additionalProperties map: any key is fine.
    obj = load("runbook/cluster.yaml")
    obj["spec"]["postgresql"]["parameters"]["anything_at_all"] = "1"
    assert admit(obj, "Strict")[0]["spec"]["postgresql"]["parameters"]["anything_at_all"] == "1"
    # The fixtures have no x-kubernetes-preserve-unknown-fields / nullable: checked on a schema of our own.
    schema = {"type": "object", "properties": {
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                 "properties": {"n": {"type": "integer"}}},
        "closed": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "maybe": {"type": "string", "nullable": True},
        "never": {"type": "string"},
        "defaulted": {"type": "string", "default": "d"}}}
    value = {"free": {"n": 1, "x": {"deep": [1]}}, "closed": {"n": 1, "x": 2}, "maybe": None, "defaulted": None}
    stored, unknown, errors = check_schema(value, schema)
    assert unknown == ["closed.x"]
    assert stored == {"free": {"n": 1, "x": {"deep": [1]}}, "closed": {"n": 1}, "maybe": None, "defaulted": "d"}
    assert errors == []
    _, _, errors = check_schema({"free": {"n": "1"}, "never": None}, schema)
    assert [str(e) for e in errors] == [
        'free.n: Invalid value: "string": free.n in body must be of type integer: "string"',
        'never: Invalid value: "null": never in body must be of type string: "null"']


# --- OpenAPI keywords: 422 naming the path ----------------------------------------------------------------

def mutate(name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    obj = load(name)
    change(obj)
    return obj


SKIPPED_CEL = ('<nil>: Invalid value: "null": some validation rules were not checked because the object was '
               'invalid; correct the existing errors to complete validation')

SCHEMA_CASES: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    ("below minimum", "runbook/cluster.yaml", lambda o: o["spec"].update(instances=0),
     "spec.instances: Invalid value: 0: spec.instances in body should be greater than or equal to 1"),
    ("wrong type", "runbook/cluster.yaml", lambda o: o["spec"].update(instances="3"),
     f'[spec.instances: Invalid value: "string": spec.instances in body must be of type integer: "string", '
     f"{SKIPPED_CEL}]"),
    ("map value type", "runbook/cluster.yaml", lambda o: o["spec"]["postgresql"]["parameters"].update(
        max_connections=400),
     '[spec.postgresql.parameters.max_connections: Invalid value: "integer": spec.postgresql.parameters.'
     f'max_connections in body must be of type string: "integer", {SKIPPED_CEL}]'),
    ("bad enum", "runbook/backup-ondemand.yaml", lambda o: o["spec"].update(method="tape"),
     '[spec.method: Unsupported value: "tape": supported values: "barmanObjectStore", "volumeSnapshot", '
     f'"plugin", {SKIPPED_CEL}]'),
    ("required", "runbook/scheduledbackup.yaml", lambda o: o["spec"].pop("schedule"),
     f"[spec.schedule: Required value, {SKIPPED_CEL}]"),
    ("required root", "runbook/cluster.yaml", lambda o: o.pop("spec"), f"[spec: Required value, {SKIPPED_CEL}]"),
    ("max length", "runbook/cluster.yaml", lambda o: o["spec"].update(serviceAccountName="a" * 254),
     f"[spec.serviceAccountName: Too long: may not be more than 253 bytes, {SKIPPED_CEL}]"),
    ("min length", "runbook/cluster.yaml", lambda o: o["spec"].update(replica={"source": ""}),
     'spec.replica.source: Invalid value: "": spec.replica.source in body should be at least 1 chars long'),
    ("maximum", "runbook/cluster.yaml", lambda o: o["spec"]["bootstrap"]["initdb"].update(walSegmentSize=2048),
     "spec.bootstrap.initdb.walSegmentSize: Invalid value: 2048: spec.bootstrap.initdb.walSegmentSize in body "
     "should be less than or equal to 1024"),
    ("pattern", "plugin/objectstore.yaml", lambda o: o["spec"].update(retentionPolicy="7y"),
     'spec.retentionPolicy: Invalid value: "7y": spec.retentionPolicy in body should match '
     "'^[1-9][0-9]*[dwm]$'"),
    ("int-or-string type", "runbook/cluster.yaml", lambda o: o["spec"]["resources"]["requests"].update(cpu=True),
     '[spec.resources.requests.cpu: Invalid value: "boolean": spec.resources.requests.cpu in body must be of '
     f'type integer,string: "boolean", {SKIPPED_CEL}]'),
    ("int-or-string pattern", "runbook/cluster.yaml", lambda o: o["spec"]["resources"]["requests"].update(
        memory="8 gigs"),
     'spec.resources.requests.memory: Invalid value: "8 gigs": spec.resources.requests.memory in body should '
     "match '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|"
     "(\\.[0-9]+))))?$'"),
    ("map-list duplicate", "runbook/cluster.yaml", lambda o: o["spec"]["resources"].update(
        claims=[{"name": "c"}, {"name": "d"}, {"name": "c", "request": "r"}]),
     'spec.resources.claims[2]: Duplicate value: map[string]interface {}{"name":"c"}'),
    ("object type", "runbook/cluster.yaml", lambda o: o["spec"].update(storage="2Gi"),
     f'[spec.storage: Invalid value: "string": spec.storage in body must be of type object: "string", '
     f"{SKIPPED_CEL}]"),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "change", "expected"), [c[1:] for c in SCHEMA_CASES],
                         ids=[c[0] for c in SCHEMA_CASES])
def test_schema_violations_are_422(name: str, change: Callable[[dict[str, Any]], None], expected: str,
                                   version: str) -> None:
    obj = mutate(name, change)
    error = refused(obj, version)
    assert (error.code, error.reason) == (422, "Invalid")
    group = obj["apiVersion"].split("/")[0]
    assert error.message == invalid_prefix(obj["kind"], obj["metadata"]["name"], group) + expected
    status = error.status()
    assert status["details"]["kind"] == obj["kind"] and status["details"]["causes"]


@pytest.mark.parametrize("version", VERSIONS)
def test_several_errors_are_listed(version: str) -> None:
    obj = mutate("runbook/cluster.yaml", lambda o: o["spec"].update(instances=0, maxSyncReplicas=-1))
    error = refused(obj, version)
    assert error.message == invalid_prefix("Cluster") + (
        "[spec.instances: Invalid value: 0: spec.instances in body should be greater than or equal to 1, "
        "spec.maxSyncReplicas: Invalid value: -1: spec.maxSyncReplicas in body should be greater than or equal "
        "to 0]")
    assert [c["field"] for c in error.status()["details"]["causes"]] == ["spec.instances", "spec.maxSyncReplicas"]


def test_primary_lease_only_in_1_30() -> None:
    obj = mutate("runbook/cluster.yaml", lambda o: o["spec"].update(primaryLease={"leaseDurationSeconds": 20}))
    admit(copy.deepcopy(obj), "Strict", "1.30")
    assert refused(obj, "1.29").message == 'strict decoding error: unknown field "spec.primaryLease"'


def test_unknown_cnpg_version() -> None:
    with pytest.raises(ValueError, match=r"1\.28"):
        admit(load("runbook/cluster.yaml"), "Strict", "1.28")


# --- CEL ---------------------------------------------------------------------------------------------------

def _sync(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda o: o["spec"]["postgresql"].update(synchronous={"method": "any", "number": 1, **fields})


def _initdb(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda o: o["spec"]["bootstrap"]["initdb"].update(fields)


# Every rule in the fixtures, with an object that breaks it (created; or updated from the fixture when the
# rule is a transition rule) and the error. test_every_cel_rule_has_a_case keeps this list complete.
CEL_CASES: list[tuple[str, str, str, Callable[[dict[str, Any]], None], str]] = [
    (".spec", "!(has(self.imageCatalogRef) && has(self.imageName))", "runbook/cluster.yaml",
     lambda o: o["spec"].update(imageName="ghcr.io/cloudnative-pg/postgresql:17", imageCatalogRef={
         "apiGroup": "postgresql.cnpg.io", "kind": "ImageCatalog", "name": "c", "major": 17}),
     'spec: Invalid value: "object": imageName and imageCatalogRef are mutually exclusive'),
    (".spec.bootstrap.initdb", "!has(self.builtinLocale) || self.localeProvider == 'builtin'",
     "runbook/cluster.yaml", _initdb(builtinLocale="C.UTF-8", localeProvider="libc"),
     'spec.bootstrap.initdb: Invalid value: "object": builtinLocale is only available when localeProvider is '
     "set to `builtin`"),
    (".spec.bootstrap.initdb", "!has(self.icuLocale) || self.localeProvider == 'icu'", "runbook/cluster.yaml",
     _initdb(icuLocale="en-US", localeProvider="libc"),
     'spec.bootstrap.initdb: Invalid value: "object": icuLocale is only available when localeProvider is set '
     "to `icu`"),
    (".spec.bootstrap.initdb", "!has(self.icuRules) || self.localeProvider == 'icu'", "runbook/cluster.yaml",
     _initdb(icuRules="&a < b", localeProvider="libc"),
     'spec.bootstrap.initdb: Invalid value: "object": icuRules is only available when localeProvider is set '
     "to `icu`"),
    (".spec.imageCatalogRef", "self.kind == 'ImageCatalog' || self.kind == 'ClusterImageCatalog'",
     "runbook/cluster.yaml", lambda o: o["spec"].update(imageCatalogRef={
         "apiGroup": "postgresql.cnpg.io", "kind": "ConfigMap", "name": "c", "major": 17}),
     'spec.imageCatalogRef: Invalid value: "object": Only image catalogs are supported'),
    (".spec.imageCatalogRef", "self.apiGroup == 'postgresql.cnpg.io'", "runbook/cluster.yaml",
     lambda o: o["spec"].update(imageCatalogRef={"apiGroup": "example.com", "kind": "ImageCatalog", "name": "c",
                                                 "major": 17}),
     'spec.imageCatalogRef: Invalid value: "object": Only image catalogs are supported'),
    (".spec.postgresql.synchronous",
     "self.dataDurability!='preferred' || ((!has(self.standbyNamesPre) || self.standbyNamesPre.size()==0) && "
     "(!has(self.standbyNamesPost) || self.standbyNamesPost.size()==0))", "runbook/cluster.yaml",
     _sync(dataDurability="preferred", standbyNamesPre=["a"]),
     "spec.postgresql.synchronous: Invalid value: \"object\": dataDurability set to 'preferred' requires empty "
     "'standbyNamesPre' and empty 'standbyNamesPost'"),
    (".spec.postgresql.synchronous.number", "self > 0", "runbook/cluster.yaml", _sync(number=0),
     'spec.postgresql.synchronous.number: Invalid value: "integer": The number of synchronous replicas should '
     "be greater than zero"),
    (".spec.serviceAccountName", "self == oldSelf", "runbook/cluster.yaml",
     lambda o: o["spec"].update(serviceAccountName="other"),
     'spec.serviceAccountName: Invalid value: "string": serviceAccountName is immutable'),
    (".spec", "oldSelf == self", "runbook/backup-ondemand.yaml",
     lambda o: o["spec"].update(cluster={"name": "other"}),
     'spec: Invalid value: "object": BackupSpec is immutable once set'),
    (".spec.cluster", "self == oldSelf", "runbook/scheduledbackup.yaml",
     lambda o: o["spec"].update(cluster={"name": "other"}),
     'spec.cluster: Invalid value: "object": cluster reference is immutable after creation'),
    (".spec.configuration", "!has(self.serverName)", "plugin/objectstore.yaml",
     lambda o: o["spec"]["configuration"].update(serverName="x"),
     "spec.configuration.serverName: Forbidden: use the 'serverName' plugin parameter in the Cluster resource"),
    (".spec.instanceSidecarConfiguration.additionalContainerArgs", "!self.exists(a, a.startsWith('--log-level'))",
     "plugin/objectstore.yaml",
     lambda o: o["spec"].update(instanceSidecarConfiguration={"additionalContainerArgs": ["--log-level=debug"]}),
     "spec.instanceSidecarConfiguration.additionalContainerArgs: Forbidden: do not set --log-level in "
     "additionalContainerArgs; use spec.instanceSidecarConfiguration.logLevel"),
]


def _is_transition(rule: str) -> bool:
    return "oldSelf" in rule


# A transition rule runs only where the old object has the value too.
BEFORE: dict[str, Callable[[dict[str, Any]], None]] = {
    ".spec.serviceAccountName": lambda o: o["spec"].update(serviceAccountName="pg-sa"),
}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_cel_rule_has_a_case(version: str) -> None:
    found = {(path, rule) for _, path, rule in cel_rules(version)}
    assert len(found) == 13
    assert found == {(path, rule) for path, rule, *_ in CEL_CASES}


@pytest.mark.parametrize("version", VERSIONS)
def test_cel_not_covered_matches_the_fixtures(version: str) -> None:
    not_covered = {f"{file} {path}: {rule}" for file, path, rule in cel_rules(version) if not cel_compiles(rule)}
    assert not_covered == {n for n in CEL_NOT_COVERED if n.startswith(("plugin", admission.CNPG_DIRS[version]))}
    assert not cel_compiles("self.(")  # the check can tell


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("path", "rule", "name", "change", "expected"), CEL_CASES,
                         ids=[f"{c[0]}:{c[1][:30]}" for c in CEL_CASES])
def test_cel_rule_is_enforced(path: str, rule: str, name: str, change: Callable[[dict[str, Any]], None],
                              expected: str, version: str) -> None:
    obj = mutate(name, change)
    group = obj["apiVersion"].split("/")[0]
    if _is_transition(rule):
        admit(copy.deepcopy(obj), "Strict", version)  # a create never runs a transition rule
        if path in BEFORE:  # nor an update that sets the value for the first time
            admit(copy.deepcopy(obj), "Strict", version, old=load(name))
        original = mutate(name, BEFORE.get(path, lambda o: None))
        stored, _ = admit(copy.deepcopy(original), "Strict", version)
        admit(copy.deepcopy(original), "Strict", version, old=stored)  # unchanged: fine
        error = refused(obj, version, old=stored)
    else:
        error = refused(obj, version)
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.message == invalid_prefix(obj["kind"], obj["metadata"]["name"], group) + expected


@pytest.mark.parametrize("version", VERSIONS)
def test_cel_rules_pass_when_kept(version: str) -> None:
    obj = mutate("runbook/cluster.yaml", _sync(number=2, dataDurability="preferred"))
    _initdb(icuLocale="en-US", localeProvider="icu")(obj)
    obj["spec"]["imageCatalogRef"] = {"apiGroup": "postgresql.cnpg.io", "kind": "ClusterImageCatalog",
                                      "name": "c", "major": 17}
    admit(obj, "Strict", version)
    store = mutate("plugin/objectstore.yaml", lambda o: o["spec"].update(
        instanceSidecarConfiguration={"additionalContainerArgs": ["--verbose"]}))
    admit(store, "Strict", version)


@pytest.mark.parametrize("version", VERSIONS)
def test_synchronous_without_data_durability_is_defaulted_by_cnpg(version: str) -> None:
    # pgha writes {method, number}; CNPG's defaulting webhook adds dataDurability before the CEL rule runs.
    stored, _ = admit(mutate("runbook/cluster.yaml", _sync()), "Strict", version)
    assert stored["spec"]["postgresql"]["synchronous"] == {"method": "any", "number": 1, "dataDurability": "required"}


# --- names and metadata --------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_cluster_name_over_50_is_refused_by_cnpg_webhook(version: str) -> None:
    ok = mutate("runbook/cluster.yaml", lambda o: o["metadata"].update(name="a" * 50))
    admit(ok, "Strict", version)
    long = "a" * 51
    error = refused(mutate("runbook/cluster.yaml", lambda o: o["metadata"].update(name=long)), version)
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.message == (f'admission webhook "vcluster.cnpg.io" denied the request: Cluster.postgresql.cnpg.io '
                             f'"{long}" is invalid: metadata.name: Invalid value: "{long}": the maximum length of a '
                             "cluster name is 50 characters")


def test_cluster_name_with_dot_is_refused_by_cnpg_webhook_only() -> None:
    # A DNS subdomain (fine for the CRD), not a DNS-1035 label (CNPG's validateName).
    error = refused(mutate("runbook/cluster.yaml", lambda o: o["metadata"].update(name="pg.primary")))
    assert error.message.endswith('metadata.name: Invalid value: "pg.primary": cluster name must be a valid DNS label')
    admit(mutate("runbook/backup-ondemand.yaml", lambda o: o["metadata"].update(name="on.demand")), "Strict")


def test_service_name_over_63_is_refused() -> None:
    long = "s" * 64
    error = refused(mutate("runbook/service-rw.yaml", lambda o: o["metadata"].update(name=long)))
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.message == f'Service "{long}" is invalid: metadata.name: Invalid value: "{long}": must be no more ' \
                            "than 63 characters"
    admit(mutate("runbook/service-rw.yaml", lambda o: o["metadata"].update(name="s" * 63)), "Strict")


def test_service_name_must_start_with_a_letter_but_a_secret_need_not() -> None:
    error = refused(mutate("runbook/service-rw.yaml", lambda o: o["metadata"].update(name="1-rw")))
    assert error.message == (
        'Service "1-rw" is invalid: metadata.name: Invalid value: "1-rw": a DNS-1035 label must consist of lower '
        "case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric "
        "character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
    admit(mutate("runbook/secret-db-user-pass.yaml", lambda o: o["metadata"].update(name="1.pass")), "Strict")
    error = refused(mutate("runbook/secret-db-user-pass.yaml", lambda o: o["metadata"].update(name="Pass")))
    assert "a lowercase RFC 1123 subdomain must consist of" in error.message


def test_namespace_name_is_a_label() -> None:
    error = refused({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cnpg.database"}})
    assert error.message.startswith('Namespace "cnpg.database" is invalid: metadata.name: Invalid value: '
                                    '"cnpg.database": a lowercase RFC 1123 label must consist of')
    admit({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cnpg-database"}}, "Strict")


def test_name_is_required() -> None:
    error = refused({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
    assert error.message == 'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required'


@pytest.mark.parametrize(("labels", "expected"), [
    ({"cnpg.io/cluster": "v" * 64},
     f'metadata.labels: Invalid value: "{"v" * 64}": must be no more than 63 characters'),
    ({"cnpg.io/cluster": "-x"},
     'metadata.labels: Invalid value: "-x": a valid label must be an empty string or consist of alphanumeric '
     "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
     "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
    ({"Cnpg.io/cluster": "x"},
     'metadata.labels: Invalid value: "Cnpg.io/cluster": prefix part a lowercase RFC 1123 subdomain must consist '
     "of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
     "(e.g. 'example.com', regex used for validation is "
     "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
    ({"cnpg.io/" + "k" * 64: "x"},
     f'metadata.labels: Invalid value: "cnpg.io/{"k" * 64}": name part must be no more than 63 characters'),
])
def test_labels(labels: dict[str, str], expected: str) -> None:
    error = refused(mutate("runbook/podmonitor.yaml", lambda o: o["metadata"].update(labels=labels)))
    assert error.message == f'PodMonitor.monitoring.coreos.com "{CLUSTER}" is invalid: {expected}'


def test_label_edge_values_are_fine() -> None:
    admit(mutate("runbook/podmonitor.yaml", lambda o: o["metadata"].update(
        labels={"a": "", "b": "v" * 63, "example.com/" + "k" * 63: "A.b_c-9"})), "Strict")


def test_annotations_total_size() -> None:
    big = {"a": "x" * (256 * 1024 - 1)}
    admit(mutate("runbook/secret-db-user-pass.yaml", lambda o: o["metadata"].update(annotations=big)), "Strict")
    big["a"] += "x"
    error = refused(mutate("runbook/secret-db-user-pass.yaml", lambda o: o["metadata"].update(annotations=big)))
    assert error.message == 'Secret "db-user-pass" is invalid: metadata.annotations: Too long: may not be more than ' \
                            "262144 bytes"


def test_custom_resource_labels_are_checked_too() -> None:
    error = refused(mutate("runbook/cluster.yaml", lambda o: o["metadata"].update(labels={"a": "-"})))
    assert error.message.startswith(invalid_prefix("Cluster") + 'metadata.labels: Invalid value: "-": a valid label')


def test_pod_monitor_api_version() -> None:
    admit(load("runbook/podmonitor-azmonitoring.yaml"), "Strict")
    error = refused(mutate("runbook/podmonitor.yaml", lambda o: o.update(apiVersion="monitoring.coreos.com/v2")))
    assert (error.code, error.reason) == (404, "NotFound")


# --- Service ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "expected"), [
    (lambda s: s["ports"][0].update(port=0),
     'spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive'),
    (lambda s: s["ports"][0].update(port=65536),
     'spec.ports[0].port: Invalid value: 65536: must be between 1 and 65535, inclusive'),
    (lambda s: s["ports"][0].update(targetPort=70000),
     'spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive'),
    (lambda s: s["ports"][0].update(protocol="HTTP"),
     'spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'),
    (lambda s: s.update(loadBalancerSourceRanges=["203.0.113.10"]),
     'spec.LoadBalancerSourceRanges[0]: Invalid value: "203.0.113.10": must be a valid CIDR value, (e.g. '
     '10.9.8.0/24 or 2001:db8::/64)'),
    (lambda s: s.update(loadBalancerSourceRanges=["203.0.113.0/33"]),
     'spec.LoadBalancerSourceRanges[0]: Invalid value: "203.0.113.0/33": must be a valid CIDR value, (e.g. '
     '10.9.8.0/24 or 2001:db8::/64)'),
    (lambda s: s.update(type="ClusterIP"),
     "spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"),
    (lambda s: s.update(ports=[]), "spec.ports: Required value"),
    (lambda s: s.update(ports=[{"port": 5432}, {"port": 5433}]),
     "[spec.ports[0].name: Required value, spec.ports[1].name: Required value]"),
])
def test_service_rules(change: Callable[[dict[str, Any]], None], expected: str) -> None:
    error = refused(mutate("runbook/service-rw.yaml", lambda o: change(o["spec"])))
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.message == f'Service "cnpg-cluster-load-balancer-rw" is invalid: {expected}'


def test_service_port_of_the_wrong_type_fails_decoding() -> None:
    error = refused(mutate("runbook/service-rw.yaml", lambda o: o["spec"]["ports"][0].update(port="5432")))
    assert (error.code, error.reason) == (400, "BadRequest")
    assert error.message == ('Service in version "v1" cannot be handled as a Service: json: cannot unmarshal string '
                             "into Go struct field ServicePort.spec.ports.port of type int32")


def test_service_ranges_ipv6_and_padding_are_fine() -> None:
    admit(mutate("runbook/service-rw.yaml", lambda o: o["spec"].update(
        loadBalancerSourceRanges=["2001:db8::/64", "2001:DB8::/64", " 10.0.0.0/8 "])), "Strict")
    _, warnings = admit(mutate("runbook/service-rw.yaml", lambda o: o["spec"].update(
        loadBalancerSourceRanges=["10.0.0.1/8"])), "Strict")
    assert warnings == ['spec.loadBalancerSourceRanges[0]: CIDR value "10.0.0.1/8" is ambiguous in this context '
                        '(should be "10.0.0.0/8" or "10.0.0.1/32"?)']
