"""infra/azuredeploy.json, and `pgha plan monitoring`'s Azure resources, against Azure's published
resource-manager schemas (tests/contract/fixtures/arm); the template's role assignments against
docs/azure.md's table, and its app settings against the settings pgha reads, both ways.

`PGHA_UPDATE_INFRA=1` rewrites the template from shared/platforms/aks/template.py."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from shared.platforms.aks.alerting import HIDDEN
from shared.platforms.aks.config import AksSettings
from shared.platforms.aks.plan import monitoring_plan
from shared.platforms.aks.template import template
from shared.settings import SETTINGS_DOC
from tests.contract.arm_schemas import resource_errors, template_errors
from triggers.plans import render

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "azuredeploy.json"
ROLES_TABLE = re.compile(r"<!-- roles table.*?-->\n(.*?)<!-- end roles table -->", re.S)
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# what each scope in docs/azure.md's words must name in the template: the resource type, and the parameter or
# variable holding its name (the node resource group: the nested deployment's group)
SCOPE_WORDS = {
    "the AKS cluster": ("Microsoft.ContainerService/managedClusters/", "aksCluster"),
    "the workload identity": ("Microsoft.ManagedIdentity/userAssignedIdentities/", "workloadIdentityName"),
    "the backups container": ("/blobServices/default/containers/", "backupsContainer"),
    "the backups storage account": ("Microsoft.Storage/storageAccounts/{0}'", "backupsStorageAccount"),
    "the Azure Monitor workspace": ("Microsoft.Monitor/accounts/", "monitorWorkspaceName"),
    "the Log Analytics workspace": ("Microsoft.OperationalInsights/workspaces/", "logAnalyticsWorkspaceName"),
    "pgha's own storage account": ("Microsoft.Storage/storageAccounts/{0}'", "storageName"),
    "the alert rule group": ("Microsoft.AlertsManagement/prometheusRuleGroups/", "pgha-cnpg-alerts"),
    "the AKS node resource group": ("", "aksNodeResourceGroup"),
}
# what the Functions host and the SDKs read, beside pgha's own settings
HOST_SETTINGS = {"AzureWebJobsStorage__accountName", "AzureWebJobsStorage__credential",
                 "AzureWebJobsStorage__clientId", "AZURE_CLIENT_ID"}


def test_the_template_is_the_one_the_code_writes() -> None:
    written = json.dumps(template(), indent=2) + "\n"
    if os.environ.get("PGHA_UPDATE_INFRA") == "1":
        TEMPLATE.write_text(written)
    assert TEMPLATE.read_text() == written, "infra/azuredeploy.json is stale: PGHA_UPDATE_INFRA=1 rewrites it"


def resources(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource, nested deployments' own too, each with the resource group it lands in."""
    found = []
    for resource in tree["resources"]:
        found.append(resource)
        if resource["type"] == "Microsoft.Resources/deployments":
            found += [{**inner, "resourceGroup": resource["resourceGroup"]}
                      for inner in resources(resource["properties"]["template"])]
    return found


def test_every_resource_passes_azure_s_published_schemas() -> None:
    deployed = json.loads(TEMPLATE.read_text())
    assert template_errors(deployed) == []
    nested = [r["properties"]["template"] for r in deployed["resources"]
              if r["type"] == "Microsoft.Resources/deployments"]
    assert nested and all(template_errors(inner) == [] for inner in nested)
    kinds = {r["type"] for r in resources(deployed)}
    assert {"Microsoft.Web/sites", "Microsoft.Web/serverfarms", "Microsoft.ManagedIdentity/userAssignedIdentities",
            "Microsoft.Network/natGateways", "Microsoft.Insights/actionGroups",
            "Microsoft.AlertsManagement/prometheusRuleGroups"} <= kinds


def test_the_function_app_is_flex_consumption_on_python_3_11_with_its_runtime_in_function_app_config() -> None:
    deployed = json.loads(TEMPLATE.read_text())
    site = next(r for r in deployed["resources"] if r["type"] == "Microsoft.Web/sites")
    plan = next(r for r in deployed["resources"] if r["type"] == "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert site["properties"]["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    settings = {s["name"] for s in site["properties"]["siteConfig"]["appSettings"]}
    assert not settings & {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"}  # refused on Flex
    # loadBalancer: out through the NAT gateway's static address, which the LoadBalancers' sourceRanges name
    assert "variables('natted')" in site["properties"]["virtualNetworkSubnetId"]
    vnet = next(r for r in deployed["resources"] if r["type"] == "Microsoft.Network/virtualNetworks")
    subnet = vnet["properties"]["subnets"][0]["properties"]
    assert subnet["delegations"][0]["properties"]["serviceName"] == "Microsoft.App/environments"
    assert "natGateways" in subnet["natGateway"]["id"]


def documented_roles() -> set[tuple[str, str, str]]:
    table = ROLES_TABLE.search((ROOT / "docs" / "azure.md").read_text())
    assert table, "docs/azure.md lost its roles table markers"
    rows = set()
    for line in table.group(1).splitlines()[2:]:
        role, role_id, scope, _why = [cell.strip() for cell in line.strip("|").split("|")]
        rows.add((role, role_id.strip("`"), scope))
    return rows


def assigned_roles() -> set[tuple[str, str]]:
    """(role definition id, scope in docs/azure.md's words) of each assignment in the template."""
    found = set()
    for resource in resources(json.loads(TEMPLATE.read_text())):
        if resource["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        role_id = GUID.search(resource["properties"]["roleDefinitionId"])
        scope = resource.get("scope", "")
        group = resource.get("resourceGroup", "")
        if group:  # a nested deployment's: the group it lands in
            words = [w for w, (kind, name) in SCOPE_WORDS.items() if not kind and name and name in group]
        else:
            words = [w for w, (kind, name) in SCOPE_WORDS.items()
                     if kind and kind in scope and name in scope]
        assert role_id and len(words) == 1, (resource, words)
        found.add((role_id.group(0), words[0]))
    return found


def test_the_role_assignments_are_docs_azure_md_s_table_exactly() -> None:
    documented = documented_roles()
    assert {(role_id, scope) for _role, role_id, scope in documented} == assigned_roles()
    assert len(documented) == len(assigned_roles())  # no row twice, none missing


def test_the_app_settings_are_the_ones_pgha_reads_both_ways() -> None:
    site = next(r for r in template()["resources"] if r["type"] == "Microsoft.Web/sites")
    given = {s["name"] for s in site["properties"]["siteConfig"]["appSettings"]}
    # every setting pgha reads, but those of the local platform and the devhost, is set on Azure
    on_azure = {name for name, doc in SETTINGS_DOC.items() if not doc.startswith(("local platform:", "devhost:"))}
    assert on_azure - given == set()
    # and nothing is set that pgha, the Functions host or the SDKs do not read
    assert given - on_azure - HOST_SETTINGS == set()
    # the sample's settings: each set on Azure, or local/devhost-only, or replaced on Flex Consumption
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    replaced = {"FUNCTIONS_WORKER_RUNTIME": "functionAppConfig.runtime",
                "AzureWebJobsStorage": "AzureWebJobsStorage__accountName (identity-based)"}
    assert set(sample) - given - set(replaced) == set(SETTINGS_DOC) - on_azure


PLAN_BLOCK = re.compile(r"(<!-- plan monitoring -->\n)(.*?)(<!-- end plan monitoring -->)", re.S)


def test_docs_azure_md_shows_the_plan_as_pgha_prints_it() -> None:
    aks = AksSettings(subscription_id="sub", resource_group="rg-cnpg", cluster="aks-primary",
                      monitor_workspace_id="/subscriptions/sub/resourceGroups/rg-cnpg/providers/Microsoft.Monitor/"
                                           "accounts/amw-cnpg", alerts_url="https://pgha-app.azurewebsites.net/api/alerts")
    block = "```yaml\n" + render(monitoring_plan(aks, ["cnpg-database"])) + "```\n"
    docs = ROOT / "docs" / "azure.md"
    text = docs.read_text()
    if os.environ.get("PGHA_UPDATE_INFRA") == "1":
        text = PLAN_BLOCK.sub(lambda m: m.group(1) + block + m.group(3), text)
        docs.write_text(text)
    shown = PLAN_BLOCK.search(text)
    assert shown and shown.group(2) == block, "docs/azure.md's plan is stale: PGHA_UPDATE_INFRA=1 rewrites it"
    assert HIDDEN in block and "code=" in block


@pytest.fixture()
def plan_entries() -> list[dict[str, Any]]:
    aks = AksSettings(subscription_id="sub", resource_group="rg", cluster="aks",
                      monitor_workspace_id="/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Monitor/accounts/w",
                      action_group_id="", alerts_url="https://pgha.example/api/alerts")
    return monitoring_plan(aks, ["cnpg-database"])


def test_plan_monitoring_renders_resources_azure_accepts_and_never_the_key(plan_entries: list[dict[str, Any]]) -> None:
    arm = [e["object"] for e in plan_entries if "kind" not in e["object"]]
    assert {r["type"] for r in arm} == {"Microsoft.Insights/actionGroups",
                                        "Microsoft.AlertsManagement/prometheusRuleGroups"}
    assert all(resource_errors(r) == [] for r in arm)
    group = next(r for r in arm if r["type"] == "Microsoft.Insights/actionGroups")
    receiver = group["properties"]["webhookReceivers"][0]
    assert receiver["useCommonAlertSchema"] is True and receiver["serviceUri"].endswith(f"?code={HIDDEN}")
    rules = next(r for r in arm if r["type"] == "Microsoft.AlertsManagement/prometheusRuleGroups")["properties"]
    assert rules["scopes"][1].endswith("/managedClusters/aks") and rules["clusterName"] == "aks"
    assert all(rule["actions"] == [{"actionGroupId": "/subscriptions/sub/resourceGroups/rg/providers/"
                                                     "Microsoft.Insights/actionGroups/pgha-alerts"}]
               for rule in rules["rules"])
    secret = next(e["object"] for e in plan_entries if e["object"].get("kind") == "Secret")
    assert secret["stringData"]["url"] == f"https://pgha.example/api/alerts?code={HIDDEN}"


def test_the_template_s_alerting_is_the_plan_s(plan_entries: list[dict[str, Any]]) -> None:
    """Same rules, same receiver shape: the template differs only where ARM fills in names and the key."""
    deployed = {r["type"]: r for r in template()["resources"]}
    planned = {e["object"]["type"]: e["object"] for e in plan_entries if "kind" not in e["object"]}
    for kind in ("Microsoft.Insights/actionGroups", "Microsoft.AlertsManagement/prometheusRuleGroups"):
        assert (deployed[kind]["name"], deployed[kind]["apiVersion"]) == (planned[kind]["name"],
                                                                         planned[kind]["apiVersion"])
    strip = lambda rules: [{k: v for k, v in r.items() if k != "actions"} for r in rules]  # noqa: E731
    assert strip(deployed["Microsoft.AlertsManagement/prometheusRuleGroups"]["properties"]["rules"]) == strip(
        planned["Microsoft.AlertsManagement/prometheusRuleGroups"]["properties"]["rules"])
    uri = deployed["Microsoft.Insights/actionGroups"]["properties"]["webhookReceivers"][0]["serviceUri"]
    # the receive_alert function's own key, read by ARM from the app: never the host key (every route)
    assert "/api/alerts?code=" in uri and "listKeys(resourceId('Microsoft.Web/sites/functions'" in uri
    assert "'receive_alert'" in uri and "/host/" not in uri
    assert deployed["Microsoft.Insights/actionGroups"]["condition"] == "[parameters('deployAlerting')]"
