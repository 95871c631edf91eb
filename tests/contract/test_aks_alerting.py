"""PGHA_MONITORING_APPLY on AKS: deploy's monitoring step puts the alert rule group into Azure Monitor (the
real SDK against azure_world, whose rule-group PUT is refused as the provider refuses: no role, a body its
published schema rejects, a workspace that is not there) and the PrometheusRule into the cluster (admitted
by prometheus-operator's CRD); the doctor and the pre-flight name what is missing first."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError

from shared.platforms.aks import alerting
from shared.platforms.aks import kube as kube_paths
from shared.platforms.aks.alert_rules import aks_rules
from shared.platforms.aks.plan import monitoring_plan
from shared.platforms.aks.platform import AksPlatform
from shared.spec import parse_spec
from tests.contract.azure_world import MONITORING_CONTRIBUTOR, RG, AzureWorld
from tests.contract.conftest import kube_for, settings
from tests.contract.fake_kube import FakeKubeApi

SPEC = parse_spec({"name": "pg1", "namespace": "db"})
WORKSPACE = f"{RG}/rg-cnpg/providers/Microsoft.Monitor/accounts/amw-cnpg"
ACTION_GROUP = f"{RG}/rg-cnpg/providers/Microsoft.Insights/actionGroups/pgha-alerts"
RULE_GROUP = f"{RG}/rg-cnpg/providers/Microsoft.AlertsManagement/prometheusRuleGroups/pgha-cnpg-alerts".lower()


@pytest.fixture()
def applying(aks: AksPlatform) -> AksPlatform:
    aks.aks = replace(aks.aks, monitoring_apply=True, monitor_workspace_id=WORKSPACE, action_group_id=ACTION_GROUP)
    return aks


def test_deploy_applies_the_rule_group_in_the_workspace_s_region_and_the_prometheus_rule(
    applying: AksPlatform, azure_world: AzureWorld, kube_api: FakeKubeApi
) -> None:
    done = applying.configure_monitoring(SPEC)
    assert done.outcome == "done" and "rule group pgha-cnpg-alerts" in done.detail, done.detail
    stored = azure_world.rule_groups[RULE_GROUP]
    assert stored["location"] == "westus3"
    properties = stored["properties"]
    assert properties["scopes"] == [WORKSPACE, f"{RG}/rg-cnpg/providers/Microsoft.ContainerService/"
                                               "managedClusters/aks-primary"]
    assert [r["alert"] for r in properties["rules"]] == [r.alert for r in aks_rules()]
    assert all(r["actions"] == [{"actionGroupId": ACTION_GROUP}] for r in properties["rules"])
    rule = kube_api.get("/apis/monitoring.coreos.com/v1/namespaces/cnpg-system/prometheusrules/pgha-alert-rules")
    assert rule is not None and len(rule["spec"]["groups"][0]["rules"]) == len(aks_rules())
    again = applying.configure_monitoring(SPEC)  # every deploy: the same PUT, idempotent
    assert again.outcome == "done" and azure_world.rule_groups[RULE_GROUP] == stored


def test_without_its_role_on_the_rule_group_the_step_fails_quoting_azure(
    applying: AksPlatform, azure_world: AzureWorld
) -> None:
    azure_world.assignments = [a for a in azure_world.assignments
                               if not a["roleDefinitionId"].endswith(MONITORING_CONTRIBUTOR)]
    with pytest.raises(HttpResponseError, match=r"AuthorizationFailed.*prometheusRuleGroups/write"):
        applying.configure_monitoring(SPEC)
    assert azure_world.rule_groups == {}


def test_a_rule_group_the_provider_s_schema_refuses_is_not_stored(
    applying: AksPlatform, azure_world: AzureWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(alerting.SEVERITY, "critical", "Sev0")  # the portal's word; the API wants 0
    with pytest.raises(HttpResponseError, match=r"severity: 'Sev0' is not of type 'integer'"):
        applying.configure_monitoring(SPEC)
    assert azure_world.rule_groups == {}


def test_the_doctor_and_the_pre_flight_name_the_missing_settings(applying: AksPlatform) -> None:
    found = {c.name: c for c in applying.diagnose(SPEC, "doctor")}
    assert found["alert rules"].verdict == "PASS" and "westus3" in found["alert rules"].detail
    applying.aks = replace(applying.aks, monitor_workspace_id="", action_group_id="")
    refused = {c.name: c for c in applying.diagnose(SPEC, "deploy")}["alert rules"]
    assert refused.verdict == "FAIL"
    assert "PGHA_MONITOR_WORKSPACE_ID and PGHA_ACTION_GROUP_ID unset" in refused.detail
    applying.aks = replace(applying.aks, monitoring_apply=False)
    assert "alert rules" not in {c.name for c in applying.diagnose(SPEC, "deploy")}


def test_the_plan_s_kubernetes_objects_are_admitted_by_prometheus_operator_s_crds(
    kube_api: FakeKubeApi, tmp_path: Path
) -> None:
    """What `pgha plan monitoring` prints for kube-prometheus-stack, applied as an operator would apply it
    (`kubectl apply --server-side`): every object admitted under Strict validation, nothing pruned."""
    kube_api.rbac = None  # the operator's own credentials, not pgha's role
    kube = kube_for(kube_api, tmp_path)
    objects = [e["object"] for e in monitoring_plan(settings(), ["db"]) if "kind" in e["object"]]
    assert [o["kind"] for o in objects] == ["PrometheusRule", "Secret", "AlertmanagerConfig"]
    for obj in objects:
        kube.apply(obj)
        meta = obj["metadata"]
        stored = kube_api.get(kube_paths.path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"]))
        assert stored is not None and stored.get("spec") == obj.get("spec"), obj["kind"]
