"""The offline ARM schema validator (tests/contract/arm_schemas.py) both passes and fails what it should."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.contract.arm_schemas import NoSchemaError, resource_definition, resource_errors, template_errors

TEMPLATE_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"

ACTION_GROUP: dict[str, Any] = {
    "type": "Microsoft.Insights/actionGroups",
    "apiVersion": "2023-01-01",
    "name": "pgha-ag",
    "location": "global",
    "properties": {
        "groupShortName": "pgha",
        "enabled": True,
        "webhookReceivers": [{"name": "hook", "serviceUri": "[parameters('hookUri')]", "useCommonAlertSchema": True}],
    },
}

RULE_GROUP: dict[str, Any] = {
    "type": "Microsoft.AlertsManagement/prometheusRuleGroups",
    "apiVersion": "2023-03-01",
    "name": "pgha-rules",
    "location": "westeurope",
    "properties": {
        "scopes": ["[parameters('workspaceId')]"],
        "interval": "PT1M",
        "rules": [{"alert": "PgDown", "expression": "pg_up == 0", "for": "PT5M", "severity": 1}],
    },
}

ROLE_ASSIGNMENT: dict[str, Any] = {
    "type": "Microsoft.Authorization/roleAssignments",
    "apiVersion": "2022-04-01",
    "name": "[guid(resourceGroup().id, 'pgha')]",
    "scope": "[format('Microsoft.Storage/storageAccounts/{0}', parameters('account'))]",
    "dependsOn": ["[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'id')]"],
    "condition": "[parameters('assign')]",
    "properties": {
        "roleDefinitionId": "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'x')]",
        "principalId": "[reference('id').principalId]",
        "principalType": "ServicePrincipal",
    },
}


def template(*resources: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"$schema": TEMPLATE_SCHEMA, "contentVersion": "1.0.0.0", "resources": list(resources), **top}


def test_valid_resources_pass() -> None:
    assert resource_errors(ACTION_GROUP) == []
    assert resource_errors(RULE_GROUP) == []
    assert resource_errors(ROLE_ASSIGNMENT) == []


def test_missing_required_property_is_named() -> None:
    bad = copy.deepcopy(ACTION_GROUP)
    del bad["properties"]["groupShortName"]
    errors = resource_errors(bad)
    assert len(errors) == 1
    assert errors[0].startswith("$.properties: 'groupShortName' is a required property")


def test_wrong_type_is_reported_at_its_path() -> None:
    bad = copy.deepcopy(RULE_GROUP)
    bad["properties"]["rules"][0]["severity"] = "high"
    assert resource_errors(bad) == [
        "$.properties.rules[0].severity: 'high' is not of type 'integer' (or an ARM expression \"[...]\")"
    ]


def test_template_only_keys_are_checked_by_the_envelope() -> None:
    bad = dict(ROLE_ASSIGNMENT, dependsOn="id", condition=3, copy={"name": "c", "count": 2, "mode": "Sometimes"})
    errors = resource_errors(bad)
    assert [e.split(":")[0] for e in errors] == ["$.condition", "$.copy.mode", "$.dependsOn"]


def test_wrong_type_or_api_version_has_no_schema() -> None:
    with pytest.raises(NoSchemaError, match="2021-01-01"):
        resource_errors(dict(ACTION_GROUP, apiVersion="2021-01-01"))
    with pytest.raises(NoSchemaError, match=r"Microsoft\.Insights/nothing"):
        resource_errors(dict(ACTION_GROUP, type="Microsoft.Insights/nothing"))


def test_child_types_map_to_underscore_definitions() -> None:
    assert resource_definition("Microsoft.Storage/storageAccounts/blobServices/containers", "2026-04-01") == (
        "2026-04-01/Microsoft.Storage.json",
        "storageAccounts_blobServices_containers",
    )
    assert resource_definition("microsoft.web/serverFarms", "2024-11-01")[1] == "serverfarms"
    subnet = {
        "type": "Microsoft.Network/virtualNetworks/subnets",
        "apiVersion": "2025-07-01",
        "name": "vnet/pg",
        "properties": {"addressPrefix": "10.0.1.0/24", "natGateway": {"id": "[resourceId('x', 'y')]"}},
    }
    assert resource_errors(subnet) == []
    subnet["properties"]["addressPrefix"] = 24
    assert resource_errors(subnet) == ["$.properties.addressPrefix: 24 is not of type 'string'"]


def test_valid_template_passes() -> None:
    tpl = template(
        ACTION_GROUP,
        RULE_GROUP,
        ROLE_ASSIGNMENT,
        parameters={"hookUri": {"type": "securestring"}, "assign": {"type": "bool", "defaultValue": True}},
        variables={"x": 1},
        outputs={"id": {"type": "string", "value": "[resourceId('Microsoft.Insights/actionGroups', 'pgha-ag')]"}},
    )
    assert template_errors(tpl) == []


def test_bad_template_shape_and_resources_fail() -> None:
    bad_rule = copy.deepcopy(RULE_GROUP)
    bad_rule["properties"]["rules"][0]["severity"] = "high"
    tpl = template(ACTION_GROUP, bad_rule, contentVersion="1.0", extra=True)
    errors = template_errors(tpl)
    assert errors[0] == "$: Additional properties are not allowed ('extra' was unexpected)"
    assert errors[1].startswith("$.contentVersion: '1.0' does not match")
    assert errors[2].startswith("$.resources[1].properties.rules[0].severity: 'high' is not of type 'integer'")
    assert len(errors) == 3
    assert template_errors({"$schema": TEMPLATE_SCHEMA, "contentVersion": "1.0.0.0"}) == [
        "$: 'resources' is a required property"
    ]
    with pytest.raises(NoSchemaError):
        template_errors(
            template(ACTION_GROUP, **{"$schema": TEMPLATE_SCHEMA.replace("deployment", "subscriptionDeployment")})
        )


def test_a_misspelt_property_is_named_at_any_depth() -> None:
    """The published schemas never say `additionalProperties: false`, so validation alone passes a misspelt
    name; the undeclared-property walk names it, where it is. A name spelt in another case would be matched by
    ARM but not checked by the validator: it is named too."""
    group = copy.deepcopy(ACTION_GROUP)
    group["properties"]["webhookReceivers"][0]["useCommonAlertSchma"] = True
    group["properties"]["webhookReceivers"][0]["UseAadAuth"] = False
    group["dependOn"] = []
    errors = resource_errors(group)
    assert sorted(e.split(":")[0] for e in errors) == ["$.dependOn", "$.properties.webhookReceivers[0].UseAadAuth",
                                                        "$.properties.webhookReceivers[0].useCommonAlertSchma"]
    misspelt = next(e for e in errors if "useCommonAlertSchma" in e)
    assert "serviceUri, tenantId, useAadAuth, useCommonAlertSchema)" in misspelt, misspelt
    assert "$.properties.webhookReceivers[0].UseAadAuth: spelt 'useAadAuth' in the schema" in errors


def test_maps_free_form_objects_and_the_template_engine_s_keys_are_not_undeclared() -> None:
    tagged = {**copy.deepcopy(RULE_GROUP), "tags": {"any-key": "fine", "owner": "dba"}}
    tagged["properties"]["rules"][0]["labels"] = {"team": "db"}  # a map of strings
    assert resource_errors(tagged) == []
    looped = copy.deepcopy(ACTION_GROUP)  # a property loop (copy) makes the receivers
    looped["properties"]["copy"] = [{"name": "emailReceivers", "count": 2, "input": {
        "name": "[concat('mail', copyIndex('emailReceivers'))]", "emailAddress": "dba@example.com"}}]
    assert resource_errors(looped) == []
    nested = {"type": "Microsoft.Resources/deployments", "apiVersion": "2025-04-01", "name": "inner",
              "resourceGroup": "[parameters('nodeGroup')]", "subscriptionId": "[subscription().subscriptionId]",
              "properties": {"mode": "Incremental", "template": {"$schema": TEMPLATE_SCHEMA,
                                                                 "contentVersion": "1.0.0.0", "resources": []}}}
    assert resource_errors(nested) == []
    nested["resourceGruop"] = nested.pop("resourceGroup")
    assert [e.split(":")[0] for e in resource_errors(nested)] == ["$.resourceGruop"]
    assert [e.split(":")[0] for e in resource_errors({**ACTION_GROUP, "resourceGroup": "rg"})] == ["$.resourceGroup"]
