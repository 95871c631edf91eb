"""prometheus-operator's CRDs (fixtures/crds/prometheus-operator-0.93.0, what kube-prometheus-stack installs) in
admission.py and the fake API server: PrometheusRule and AlertmanagerConfig are admitted or refused as the
real API server does with those CRDs installed, and the monitoring.coreos.com PodMonitor is now schema-checked."""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.contract.admission import (
    PROMETHEUS_OPERATOR_DIR,
    Invalid,
    admit,
    cel_compiles,
    cel_rules,
    crd_schema,
)
from tests.contract.fake_kube import FakeKubeApi, FakeKubeServer
from tests.contract.installed import CRD_PATH, crd

VERSIONS = ["1.29", "1.30"]
NS = "cnpg-database"
DURATION = "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
NOT_CHECKED = ('<nil>: Invalid value: "null": some validation rules were not checked because the object was '
               "invalid; correct the existing errors to complete validation")


def prometheus_rule() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": {"name": "pgha-alerts", "namespace": NS, "labels": {"release": "kube-prometheus-stack"}},
        "spec": {"groups": [{"name": "pgha.rules", "interval": "30s", "rules": [{
            "alert": "PghaWalArchivingFailing",
            "expr": "cnpg_pg_stat_archiver_seconds_since_last_failure < 300",
            "for": "5m", "keep_firing_for": "10m",
            "labels": {"severity": "critical"},
            "annotations": {"summary": "WAL archiving fails on {{ $labels.cnpg_io_cluster }}"},
        }]}]},
    }


def alertmanager_config() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "AlertmanagerConfig",
        "metadata": {"name": "pgha", "namespace": NS},
        "spec": {
            "route": {"receiver": "pgha-webhook", "groupBy": ["alertname", "cnpg_io_cluster"], "groupWait": "30s",
                      "groupInterval": "5m", "repeatInterval": "4h",
                      "matchers": [{"name": "severity", "matchType": "=", "value": "critical"},
                                   {"name": "alertname", "matchType": "=~", "value": "Pgha.*"}]},
            "receivers": [{"name": "pgha-webhook", "webhookConfigs": [{
                "urlSecret": {"name": "pgha-alert-webhook", "key": "url"}, "sendResolved": True, "maxAlerts": 0,
                "timeout": "10s"}]}],
        },
    }


def changed(make: Callable[[], dict[str, Any]], change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    obj = make()
    change(obj)
    return obj


def refused(obj: dict[str, Any], version: str = "1.30") -> Invalid:
    with pytest.raises(Invalid) as caught:
        admit(copy.deepcopy(obj), "Strict", version)
    return caught.value


def rule0(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["groups"][0]["rules"][0]


def webhook0(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["receivers"][0]["webhookConfigs"][0]


# --- the CRDs are there, for every CNPG version --------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_prometheus_operator_kinds_have_their_schema(version: str) -> None:
    for api_version, kind in [("monitoring.coreos.com/v1", "PodMonitor"),
                              ("monitoring.coreos.com/v1", "PrometheusRule"),
                              ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig")]:
        assert crd_schema(api_version, kind, version) is not None, (api_version, kind)
    # kube-prometheus-stack's AlertmanagerConfig CRD serves v1alpha1 only (v1beta1 is in the "-full" one)
    for api_version, kind in [("monitoring.coreos.com/v1beta1", "AlertmanagerConfig"),
                              ("monitoring.coreos.com/v1", "AlertmanagerConfig"),
                              ("monitoring.coreos.com/v1alpha1", "PrometheusRule")]:
        obj = changed(alertmanager_config, lambda o, a=api_version, k=kind: o.update(apiVersion=a, kind=k))
        error = refused(obj, version)
        assert (error.code, error.reason) == (404, "NotFound")


def test_the_one_cel_rule_is_evaluated() -> None:
    """The only x-kubernetes-validations rule in these CRDs (test_admission.py covers CNPG's and the plugin's)."""
    rules = {(path, rule) for _, path, rule in cel_rules("1.30", (PROMETHEUS_OPERATOR_DIR,))}
    assert rules == {(".spec.receivers[*].snsConfigs[*].sigv4", "!has(self.externalId) || has(self.roleArn)")}
    assert all(cel_compiles(rule) for _, rule in rules)  # so CEL_NOT_COVERED needs no entry for them
    sns = {"topicARN": "arn:aws:sns:eu-west-1:123456789012:pgha", "sigv4": {"region": "eu-west-1", "externalId": "e"}}
    error = refused(changed(alertmanager_config, lambda o: o["spec"]["receivers"][0].update(snsConfigs=[sns])))
    assert error.message == ('AlertmanagerConfig.monitoring.coreos.com "pgha" is invalid: '
                             'spec.receivers[0].snsConfigs[0].sigv4: Invalid value: "object": externalId can only be '
                             "used when roleArn is specified")
    sns["sigv4"]["roleArn"] = "arn:aws:iam::123456789012:role/pgha"
    admit(changed(alertmanager_config, lambda o: o["spec"]["receivers"][0].update(snsConfigs=[sns])), "Strict")


# --- PodMonitor: now the real schema ---------------------------------------------------------------------------

def pod_monitor() -> dict[str, Any]:
    labels = {"cnpg.io/cluster": "pg1"}  # the shape of shared/platforms/aks/manifests.py pod_monitor()
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": {"name": "pg1", "namespace": NS, "labels": labels},
            "spec": {"selector": {"matchLabels": labels}, "podTargetLabels": ["cnpg.io/cluster"],
                     "podMetricsEndpoints": [{"port": "metrics"}]}}


def test_pod_monitor_is_checked_against_the_crd() -> None:
    stored, warnings = admit(pod_monitor(), "Strict")
    assert warnings == [] and stored == pod_monitor()
    error = refused(changed(pod_monitor, lambda o: o["spec"]["podMetricsEndpoints"][0].update(path=3)))
    assert error.message == ('PodMonitor.monitoring.coreos.com "pg1" is invalid: spec.podMetricsEndpoints[0].path: '
                             'Invalid value: "integer": spec.podMetricsEndpoints[0].path in body must be of type '
                             'string: "integer"')
    error = refused(changed(pod_monitor, lambda o: o["spec"].update(endpoints=[{"port": "metrics"}])))
    assert (error.code, error.message) == (400, 'strict decoding error: unknown field "spec.endpoints"')


def test_azure_pod_monitor_stays_metadata_only() -> None:
    """azmonitoring.coreos.com's CRD (the ama-metrics add-on's) is not stored: any spec passes."""
    obj = changed(pod_monitor, lambda o: o.update(apiVersion="azmonitoring.coreos.com/v1"))
    obj["spec"]["anything"] = 1
    assert admit(copy.deepcopy(obj), "Strict") == (obj, [])
    assert refused(changed(pod_monitor, lambda o: o.update(apiVersion="azmonitoring.coreos.com/v2"))).code == 404


# --- PrometheusRule -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_prometheus_rule_is_admitted(version: str) -> None:
    stored, warnings = admit(prometheus_rule(), "Strict", version)
    assert warnings == [] and stored == prometheus_rule()  # nothing pruned, nothing defaulted
    for duration in ("0", "90s", "1h30m", "1d", "500ms", "1y2w3d4h5m6s7ms"):
        admit(changed(prometheus_rule, lambda o, d=duration: rule0(o).update({"for": d, "keep_firing_for": d})),
              "Strict", version)
    admit(changed(prometheus_rule, lambda o: rule0(o).update(expr=1)), "Strict", version)  # int-or-string


@pytest.mark.parametrize(("change", "expected"), [
    (lambda o: rule0(o).update({"for": "5 minutes"}),
     f'spec.groups[0].rules[0].for: Invalid value: "5 minutes": spec.groups[0].rules[0].for in body should match '
     f"'{DURATION}'"),
    (lambda o: rule0(o).update({"for": "1.5m"}),
     f'spec.groups[0].rules[0].for: Invalid value: "1.5m": spec.groups[0].rules[0].for in body should match '
     f"'{DURATION}'"),
    (lambda o: rule0(o).update({"keep_firing_for": "5M"}),
     f'spec.groups[0].rules[0].keep_firing_for: Invalid value: "5M": spec.groups[0].rules[0].keep_firing_for in '
     f"body should match '{DURATION}'"),
    (lambda o: rule0(o).update({"keep_firing_for": ""}),  # `for: ""` passes; keep_firing_for has minLength 1
     'spec.groups[0].rules[0].keep_firing_for: Invalid value: "": spec.groups[0].rules[0].keep_firing_for in body '
     "should be at least 1 chars long"),
    (lambda o: o["spec"]["groups"][0].pop("name"), "spec.groups[0].name: Required value"),
    (lambda o: rule0(o).pop("expr"), "spec.groups[0].rules[0].expr: Required value"),
    (lambda o: rule0(o)["labels"].update(severity=2),
     'spec.groups[0].rules[0].labels.severity: Invalid value: "integer": spec.groups[0].rules[0].labels.severity in '
     'body must be of type string: "integer"'),
    (lambda o: o["spec"]["groups"][0].update(partial_response_strategy="retry"),
     'spec.groups[0].partial_response_strategy: Invalid value: "retry": spec.groups[0].partial_response_strategy in '
     "body should match '^(?i)(abort|warn)?$'"),
    (lambda o: o["spec"]["groups"].append(copy.deepcopy(o["spec"]["groups"][0])),
     'spec.groups[1]: Duplicate value: map[string]interface {}{"name":"pgha.rules"}'),
])
def test_prometheus_rule_is_refused(change: Callable[[dict[str, Any]], Any], expected: str) -> None:
    error = refused(changed(prometheus_rule, change))
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.message == f'PrometheusRule.monitoring.coreos.com "pgha-alerts" is invalid: {expected}'


def test_partial_response_strategy_is_case_insensitive() -> None:
    """Go's `(?i)` mid-pattern, which Python's re refuses as such (admission._go_pattern rewrites it)."""
    for value in ("abort", "WARN", "Abort", ""):
        admit(changed(prometheus_rule, lambda o, v=value: o["spec"]["groups"][0].update(partial_response_strategy=v)),
              "Strict")


# --- AlertmanagerConfig v1alpha1 -----------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_alertmanager_config_is_admitted(version: str) -> None:
    stored, warnings = admit(alertmanager_config(), "Strict", version)
    assert warnings == [] and stored == alertmanager_config()
    # url in clear is accepted too (one of url/urlSecret "should be defined": not enforced by the schema)
    admit(changed(alertmanager_config, lambda o: webhook0(o).update(url="https://hooks.example.com/x")), "Strict")
    # every matchType of the enum, `=` included (a lone `=` in the CRD's YAML)
    for match_type in ("=", "!=", "=~", "!~"):
        admit(changed(alertmanager_config, lambda o, m=match_type: o["spec"]["route"]["matchers"][0].update(
            matchType=m)), "Strict", version)


def test_url_secret_name_defaults_to_empty() -> None:
    """SecretKeySelector: only `key` is required, `name` defaults to "" (an object the operator cannot resolve)."""
    obj = changed(alertmanager_config, lambda o: webhook0(o)["urlSecret"].pop("name"))
    stored, _ = admit(obj, "Strict")
    assert webhook0(stored)["urlSecret"] == {"key": "url", "name": ""}


@pytest.mark.parametrize(("change", "expected"), [
    (lambda o: o["spec"]["route"]["matchers"][0].update(matchType="=="),
     'spec.route.matchers[0].matchType: Unsupported value: "==": supported values: "!=", "=", "=~", "!~"'),
    (lambda o: o["spec"]["route"]["matchers"][0].pop("name"), "spec.route.matchers[0].name: Required value"),
    (lambda o: webhook0(o)["urlSecret"].pop("key"),
     "spec.receivers[0].webhookConfigs[0].urlSecret.key: Required value"),
    (lambda o: webhook0(o).update(sendResolved="true"),
     'spec.receivers[0].webhookConfigs[0].sendResolved: Invalid value: "string": '
     'spec.receivers[0].webhookConfigs[0].sendResolved in body must be of type boolean: "string"'),
    (lambda o: o["spec"]["receivers"][0].pop("name"), "spec.receivers[0].name: Required value"),
])
def test_alertmanager_config_is_refused_before_cel(change: Callable[[dict[str, Any]], Any], expected: str) -> None:
    """A blocking error (required, enum, wrong type) stops the CRD's CEL rule from running; the server says so."""
    error = refused(changed(alertmanager_config, change))
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.message == f'AlertmanagerConfig.monitoring.coreos.com "pgha" is invalid: [{expected}, {NOT_CHECKED}]'


@pytest.mark.parametrize(("change", "expected"), [
    (lambda o: webhook0(o).update(maxAlerts=-1),
     "spec.receivers[0].webhookConfigs[0].maxAlerts: Invalid value: -1: spec.receivers[0].webhookConfigs[0].maxAlerts "
     "in body should be greater than or equal to 0"),
    (lambda o: o["spec"]["route"].update(groupWait="30 seconds"),
     f"spec.route.groupWait: Invalid value: \"30 seconds\": spec.route.groupWait in body should match '{DURATION}'"),
    (lambda o: o["spec"]["route"].update(repeatInterval=""),
     'spec.route.repeatInterval: Invalid value: "": spec.route.repeatInterval in body should be at least 1 chars '
     "long"),
])
def test_alertmanager_config_is_refused(change: Callable[[dict[str, Any]], Any], expected: str) -> None:
    """Not blocking: the CEL rule runs (and passes), only the schema's error is reported."""
    error = refused(changed(alertmanager_config, change))
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.message == f'AlertmanagerConfig.monitoring.coreos.com "pgha" is invalid: {expected}'


def test_unknown_webhook_fields_are_refused_strictly() -> None:
    obj = changed(alertmanager_config, lambda o: webhook0(o).update(urlSecret={"secretName": "x", "key": "url"}))
    error = refused(obj)
    assert (error.code, error.message) == (
        400, 'strict decoding error: unknown field "spec.receivers[0].webhookConfigs[0].urlSecret.secretName"')


# --- through the fake API server -------------------------------------------------------------------------------

@pytest.fixture()
def server() -> Iterator[tuple[FakeKubeApi, FakeKubeServer]]:
    api = FakeKubeApi()
    crd(api, "prometheusrules.monitoring.coreos.com")
    crd(api, "alertmanagerconfigs.monitoring.coreos.com")
    fake = FakeKubeServer(api)
    yield api, fake
    fake.shutdown()


def call(fake: FakeKubeServer, method: str, path: str, body: Any = None,
         content_type: str = "application/apply-patch+yaml") -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(fake.url + path, data=data, method=method,
                                     headers={"Content-Type": content_type} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


RULE_PATH = f"/apis/monitoring.coreos.com/v1/namespaces/{NS}/prometheusrules/pgha-alerts"
AMC_PATH = f"/apis/monitoring.coreos.com/v1alpha1/namespaces/{NS}/alertmanagerconfigs/pgha"
APPLY = "?fieldManager=pgha&fieldValidation=Strict&force=true"


@pytest.mark.parametrize(("path", "make"), [(RULE_PATH, prometheus_rule), (AMC_PATH, alertmanager_config)])
def test_server_side_apply_get_delete(server: tuple[FakeKubeApi, FakeKubeServer], path: str,
                                      make: Callable[[], dict[str, Any]]) -> None:
    _, fake = server
    code, created = call(fake, "PATCH", path + APPLY, make())
    assert code == 201 and created["spec"] == make()["spec"]
    assert call(fake, "PATCH", path + APPLY, make())[0] == 200
    code, read = call(fake, "GET", path)
    assert code == 200 and read["kind"] == make()["kind"]
    code, listed = call(fake, "GET", path.rsplit("/", 1)[0])
    assert code == 200 and [o["metadata"]["name"] for o in listed["items"]] == [make()["metadata"]["name"]]
    assert call(fake, "DELETE", path)[0] == 200
    assert call(fake, "GET", path)[0] == 404


def test_server_refuses_what_the_crd_refuses(server: tuple[FakeKubeApi, FakeKubeServer]) -> None:
    api, fake = server
    code, answer = call(fake, "PATCH", RULE_PATH + APPLY,
                        changed(prometheus_rule, lambda o: rule0(o).update({"for": "5 minutes"})))
    assert code == 422 and answer["reason"] == "Invalid"
    assert answer["details"]["causes"][0]["field"] == "spec.groups[0].rules[0].for"
    assert answer["details"] | {"causes": []} == {"name": "pgha-alerts", "kind": "PrometheusRule",
                                                  "group": "monitoring.coreos.com", "causes": []}
    code, answer = call(fake, "PATCH", RULE_PATH + APPLY, changed(prometheus_rule, lambda o: o["spec"]["groups"][0]
                                                                  .pop("name")))
    assert code == 422 and answer["details"]["causes"][0] == {"reason": "FieldValueRequired",
                                                               "message": "Required value",
                                                               "field": "spec.groups[0].name"}
    code, answer = call(fake, "PATCH", AMC_PATH + APPLY, changed(alertmanager_config, lambda o: webhook0(o).update(
        maxAlerts=-1)))
    assert code == 422 and answer["details"]["causes"][0]["field"] == "spec.receivers[0].webhookConfigs[0].maxAlerts"
    assert api.get(RULE_PATH) is None and api.get(AMC_PATH) is None  # nothing stored


def test_not_served_without_the_crd(server: tuple[FakeKubeApi, FakeKubeServer]) -> None:
    api, fake = server
    del api.objects[f"{CRD_PATH}/prometheusrules.monitoring.coreos.com"]
    code, answer = call(fake, "PATCH", RULE_PATH + APPLY, prometheus_rule())
    assert (code, answer["message"]) == (404, "the server could not find the requested resource")
    assert call(fake, "PATCH", AMC_PATH + APPLY, alertmanager_config())[0] == 201
