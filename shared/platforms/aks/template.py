"""infra/azuredeploy.json: the ARM template that deploys pgha itself beside the runbook's AKS cluster.

Written here, not by hand, so that its rule group and action group are the ones `pgha plan monitoring`
renders and deploy applies (shared/platforms/aks/alerting.py), and its app settings are the ones pgha reads
(shared/settings.py); tests/unit/test_infra.py writes the file and checks it against Azure's published
schemas and docs/azure.md. ARM JSON because no Bicep compiler installs here; Azure deploys it as is.

It is deployed into the runbook's resource group, which holds the AKS cluster, the workload identity, the
backups account and the workspaces; the node resource group's one role goes through a nested deployment.
"""

from __future__ import annotations

from typing import Any

from shared.alert_rules import STANDARD
from shared.platforms.aks import alerting

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
WEB_API = "2024-11-01"
IDENTITY_API = "2024-11-30"
STORAGE_API = "2026-04-01"
NETWORK_API = "2025-07-01"
ROLE_API = "2022-04-01"
DEPLOYMENT_API = "2025-04-01"
LOG_ANALYTICS_API = "2023-09-01"

IDENTITY = "[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', parameters('appName'))]"
SITE = "[resourceId('Microsoft.Web/sites', parameters('appName'))]"
STORAGE = "[resourceId('Microsoft.Storage/storageAccounts', variables('storageName'))]"
WORKSPACE = "resourceId('Microsoft.Monitor/accounts', parameters('monitorWorkspaceName'))"
AKS = "resourceId('Microsoft.ContainerService/managedClusters', parameters('aksCluster'))"
RULE_GROUP = f"[resourceId('Microsoft.AlertsManagement/prometheusRuleGroups', '{alerting.RULE_GROUP}')]"
PRINCIPAL = f"[reference({IDENTITY[1:-1]}, '{IDENTITY_API}').principalId]"
CLIENT_ID = f"[reference({IDENTITY[1:-1]}, '{IDENTITY_API}').clientId]"
NATTED = "[equals(parameters('sqlAccess'), 'loadBalancer')]"
ALERTING = "[parameters('deployAlerting')]"
OUTBOUND_ADDRESS = ("[if(variables('natted'), reference(resourceId('Microsoft.Network/publicIPAddresses', "
                    f"variables('outboundIpName')), '{NETWORK_API}').ipAddress, '')]")

# built-in role definition ids (learn.microsoft.com, "Azure built-in roles")
ROLE_IDS = {
    "Azure Kubernetes Service Cluster User Role": "4abbcc35-e782-43d8-92c5-2d3f1bd2253f",
    "Azure Kubernetes Service RBAC Cluster Admin": "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Managed Identity Contributor": "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Monitoring Data Reader": "b0d8363b-8ddd-447d-831f-62ca05bff136",
    "Log Analytics Reader": "73c42c96-874c-492b-b04d-ab87d138a893",
    "Monitoring Contributor": "749f88d5-cbae-40b8-bcfc-e573ddc772fa",
}
# where each role is assigned: an extension resource's `scope`, relative to the template's resource group
SCOPES = {
    "the AKS cluster": "[format('Microsoft.ContainerService/managedClusters/{0}', parameters('aksCluster'))]",
    "the workload identity": "[format('Microsoft.ManagedIdentity/userAssignedIdentities/{0}', "
                             "parameters('workloadIdentityName'))]",
    "the backups container": "[format('Microsoft.Storage/storageAccounts/{0}/blobServices/default/containers/{1}', "
                             "parameters('backupsStorageAccount'), parameters('backupsContainer'))]",
    "the backups storage account": "[format('Microsoft.Storage/storageAccounts/{0}', "
                                   "parameters('backupsStorageAccount'))]",
    "the Azure Monitor workspace": "[format('Microsoft.Monitor/accounts/{0}', parameters('monitorWorkspaceName'))]",
    # ARM checks a skipped resource's scope too: a name in it even when no workspace is given
    "the Log Analytics workspace": "[format('Microsoft.OperationalInsights/workspaces/{0}', if(empty("
                                   "parameters('logAnalyticsWorkspaceName')), 'none', "
                                   "parameters('logAnalyticsWorkspaceName')))]",
    "pgha's own storage account": "[format('Microsoft.Storage/storageAccounts/{0}', variables('storageName'))]",
    "the alert rule group": "[format('Microsoft.AlertsManagement/prometheusRuleGroups/{0}', "
                            f"'{alerting.RULE_GROUP}')]",
}
# (role, scope): what pgha's identity is granted, as docs/azure.md's table lists it
GRANTS = [
    ("Azure Kubernetes Service Cluster User Role", "the AKS cluster"),
    ("Azure Kubernetes Service RBAC Cluster Admin", "the AKS cluster"),
    ("Reader", "the AKS cluster"),
    ("Managed Identity Contributor", "the workload identity"),
    ("Storage Blob Data Contributor", "the backups container"),
    ("Reader", "the backups storage account"),
    ("Monitoring Data Reader", "the Azure Monitor workspace"),
    ("Log Analytics Reader", "the Log Analytics workspace"),
    ("Reader", "the Azure Monitor workspace"),
    ("Monitoring Contributor", "the alert rule group"),
    ("Storage Blob Data Owner", "pgha's own storage account"),
    ("Storage Queue Data Contributor", "pgha's own storage account"),
    ("Storage Table Data Contributor", "pgha's own storage account"),
]
NODE_GROUP_GRANT = ("Reader", "the AKS node resource group")  # through the nested deployment


def parameter(kind: str, description: str, default: Any = None, allowed: list[Any] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"type": kind, "metadata": {"description": description}}
    if default is not None:
        found["defaultValue"] = default
    if allowed:
        found["allowedValues"] = allowed
    return found


PARAMETERS = {
    "appName": parameter("string", "The Function App, its identity and its plan", "[concat('pgha-', "
                         "uniqueString(resourceGroup().id))]"),
    "location": parameter("string", "Where pgha runs", "[resourceGroup().location]"),
    "aksCluster": parameter("string", "The AKS cluster whose CloudNativePG clusters pgha operates"),
    "aksNodeResourceGroup": parameter("string", "Its node resource group (az aks show --query nodeResourceGroup)"),
    "workloadIdentityName": parameter("string", "The user-assigned identity the clusters' service accounts "
                                      "federate with (the runbook's AKS_UAMI_WORKLOAD)"),
    "backupsStorageAccount": parameter("string", "The storage account barman-cloud writes to"),
    "backupsContainer": parameter("string", "Its container", "backups"),
    "monitorWorkspaceName": parameter("string", "The Azure Monitor workspace Managed Prometheus writes to"),
    "logAnalyticsWorkspaceName": parameter("string", "The Log Analytics workspace of ContainerLogV2 ('' for none)",
                                           ""),
    "sqlAccess": parameter("string", "How pgha reaches PostgreSQL: loadBalancer (through a NAT gateway's static "
                           "address) or serviceDns", "loadBalancer", ["loadBalancer", "serviceDns"]),
    "defaultNamespace": parameter("string", "The namespace of clusters a request names none for", "cnpg-database"),
    "cnpgNamespace": parameter("string", "The CNPG operator's namespace", "cnpg-system"),
    "cnpgDeployment": parameter("string", "The CNPG operator's deployment (cnpg-cloudnative-pg for a Helm "
                                "install)", "cnpg-controller-manager"),
    "drillsEnabled": parameter("string", "'true' lets the periodic timer run scheduled failover drills", "false",
                               ["true", "false"]),
    "alertPolicy": parameter("string", "Each playbook's policy, auto or approval",
                             "primaryUnavailable=auto,walArchivingFailing=auto,backupStale=auto"),
    "alertCallbackUrl": parameter("securestring", "Where alert responses POST their report (a Logic App's "
                                  "trigger URL), or ''", ""),
    "deployAlerting": parameter("bool", "Second pass, once the code is published: the action group (with the "
                                "receive_alert function's own key, which exists from then on) and the rule group",
                                False),
    "vnetAddressPrefix": parameter("string", "loadBalancer: the VNet of pgha's outbound NAT", "10.60.0.0/16"),
    "subnetAddressPrefix": parameter("string", "loadBalancer: the Function App's integration subnet",
                                     "10.60.0.0/24"),
}

VARIABLES = {
    "storageName": "[take(concat('pgha', uniqueString(resourceGroup().id, parameters('appName'))), 24)]",
    "vnetName": "[concat(parameters('appName'), '-vnet')]",
    "natName": "[concat(parameters('appName'), '-nat')]",
    "outboundIpName": "[concat(parameters('appName'), '-outbound')]",
}


def app_settings() -> dict[str, str]:
    """Every setting pgha reads on Azure (the local and devhost ones stay out), with the runtime's identity-
    based storage. On Flex Consumption the worker runtime is functionAppConfig.runtime, not an app setting."""
    monitor = f"{WORKSPACE}, '2023-04-03'"
    logs = "resourceId('Microsoft.OperationalInsights/workspaces', parameters('logAnalyticsWorkspaceName'))"
    return {
        "AzureWebJobsStorage__accountName": "[variables('storageName')]",
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": CLIENT_ID,
        "AZURE_CLIENT_ID": CLIENT_ID,
        "PGHA_PLATFORM": "aks",
        "PGHA_DEFAULT_NAMESPACE": "[parameters('defaultNamespace')]",
        "PGHA_STORAGE_CONNECTION": "[format('https://{0}.blob.{1}', variables('storageName'), "
                                   "environment().suffixes.storage)]",
        "PGHA_RETRY_AFTER_SECONDS": "2",
        "PGHA_READY_TIMEOUT_SECONDS": "600",
        "PGHA_POLL_SECONDS": "5",
        "PGHA_ACTIVITY_ATTEMPTS": "3",
        "PGHA_ACTIVITY_RETRY_SECONDS": "2",
        "PGHA_MAX_RECOVERY_POINT_AGE_SECONDS": "900",
        "PGHA_BACKUP_TIMEOUT_SECONDS": "1800",
        "PGHA_BACKUP_PATIENCE_SECONDS": "120",
        "PGHA_RESTORE_TIMEOUT_SECONDS": "1800",
        "PGHA_DRILL_TIMEOUT_SECONDS": "120",
        "PGHA_DRILL_MAX_LAG_BYTES": "16777216",
        "PGHA_DRILLS_ENABLED": "[parameters('drillsEnabled')]",
        "PGHA_ALERT_POLICY": "[parameters('alertPolicy')]",
        "PGHA_ALERT_APPROVAL_TIMEOUT_SECONDS": "900",
        "PGHA_ALERT_GRACE_SECONDS": "30",
        "PGHA_ALERT_RECOVERY_TIMEOUT_SECONDS": "300",
        "PGHA_ALERT_CLAIM_RETENTION_HOURS": "168",
        "PGHA_ALERT_CALLBACK_URL": "[parameters('alertCallbackUrl')]",
        "PGHA_CANCEL_TIMEOUT_SECONDS": "300",
        "PGHA_CALLBACK_HOSTS": "*.logic.azure.com",
        "PGHA_AKS_SUBSCRIPTION_ID": "[subscription().subscriptionId]",
        "PGHA_AKS_RESOURCE_GROUP": "[resourceGroup().name]",
        "PGHA_AKS_CLUSTER": "[parameters('aksCluster')]",
        "PGHA_KUBECONFIG": "",
        "PGHA_AKS_NODE_RESOURCE_GROUP": "[parameters('aksNodeResourceGroup')]",
        "PGHA_AKS_IDENTITY_NAME": "[parameters('workloadIdentityName')]",
        "PGHA_AKS_IDENTITY_RESOURCE_GROUP": "[resourceGroup().name]",
        "PGHA_AKS_IDENTITY_CLIENT_ID": "[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', "
                                       f"parameters('workloadIdentityName')), '{IDENTITY_API}').clientId]",
        "PGHA_CNPG_NAMESPACE": "[parameters('cnpgNamespace')]",
        "PGHA_CNPG_DEPLOYMENT": "[parameters('cnpgDeployment')]",
        "PGHA_SQL_ACCESS": "[parameters('sqlAccess')]",
        "PGHA_PROMETHEUS_ENDPOINT": f"[reference({monitor}).metrics.prometheusQueryEndpoint]",
        "PGHA_LOG_ANALYTICS_WORKSPACE_ID": f"[if(empty(parameters('logAnalyticsWorkspaceName')), '', "
                                           f"reference({logs}, '{LOG_ANALYTICS_API}').customerId)]",
        "PGHA_LOG_ANALYTICS_ENDPOINT": "https://api.loganalytics.io",
        "PGHA_ARM_ENDPOINT": "[environment().resourceManager]",
        "PGHA_CA_BUNDLE": "",
        "PGHA_OUTBOUND_ADDRESSES": OUTBOUND_ADDRESS,
        "PGHA_CRASHLOOP_RESTARTS": "3",
        "PGHA_MONITORING_APPLY": "[if(parameters('deployAlerting'), 'true', 'false')]",
        "PGHA_MONITOR_WORKSPACE_ID": f"[{WORKSPACE}]",
        "PGHA_ACTION_GROUP_ID": f"[resourceId('Microsoft.Insights/actionGroups', '{alerting.ACTION_GROUP}')]",
        "PGHA_ALERTS_URL": "[format('https://{0}.azurewebsites.net/api/alerts', parameters('appName'))]",
    }


def assignment(role: str, where: str, unique: str) -> dict[str, Any]:
    """A role for pgha's identity; `unique` makes its name (a GUID) the same at every deployment."""
    role_id = ROLE_IDS[role]
    return {
        "type": "Microsoft.Authorization/roleAssignments", "apiVersion": ROLE_API,
        "name": f"[guid({unique}, parameters('appName'), '{role_id}')]",
        "properties": {"roleDefinitionId": f"[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
                                           f"'{role_id}')]",
                       "principalId": PRINCIPAL, "principalType": "ServicePrincipal",
                       "description": f"pgha: {role} on {where}"},
    }


def role_assignment(role: str, scope: str, depends_on: list[str]) -> dict[str, Any]:
    target = SCOPES[scope]
    found = {**assignment(role, scope, f"resourceGroup().id, {target[1:-1]}"), "scope": target,
             "dependsOn": depends_on}
    condition = {"the Log Analytics workspace": "[not(empty(parameters('logAnalyticsWorkspaceName')))]",
                 "the alert rule group": ALERTING}.get(scope)
    if condition:
        found["condition"] = condition
    return found


def node_group_reader() -> dict[str, Any]:
    """Reader on the node resource group (the doctor finds a cluster's static public IP there): another
    group, so a nested deployment there."""
    role, where = NODE_GROUP_GRANT
    inner = {"$schema": SCHEMA, "contentVersion": "1.0.0.0",
             "resources": [assignment(role, where, "parameters('aksNodeResourceGroup')")]}
    # the outer scope evaluates the inner template's expressions (this template's parameters, its identity)
    return {
        "type": "Microsoft.Resources/deployments", "apiVersion": DEPLOYMENT_API,
        "name": "[concat(parameters('appName'), '-node-group-reader')]",
        "resourceGroup": "[parameters('aksNodeResourceGroup')]",
        "dependsOn": [IDENTITY],
        "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "Outer"}, "template": inner},
    }


def network() -> list[dict[str, Any]]:
    """loadBalancer: Flex Consumption's outbound addresses change, and a LoadBalancer's sourceRanges need one
    that does not; VNet integration sends pgha's traffic out through a NAT gateway's static address."""
    ip_id = "[resourceId('Microsoft.Network/publicIPAddresses', variables('outboundIpName'))]"
    nat_id = "[resourceId('Microsoft.Network/natGateways', variables('natName'))]"
    return [
        {"type": "Microsoft.Network/publicIPAddresses", "apiVersion": NETWORK_API, "condition": NATTED,
         "name": "[variables('outboundIpName')]", "location": "[parameters('location')]",
         "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}},
        {"type": "Microsoft.Network/natGateways", "apiVersion": NETWORK_API, "condition": NATTED,
         "name": "[variables('natName')]", "location": "[parameters('location')]", "sku": {"name": "Standard"},
         "dependsOn": [ip_id], "properties": {"publicIpAddresses": [{"id": ip_id}], "idleTimeoutInMinutes": 4}},
        {"type": "Microsoft.Network/virtualNetworks", "apiVersion": NETWORK_API, "condition": NATTED,
         "name": "[variables('vnetName')]", "location": "[parameters('location')]", "dependsOn": [nat_id],
         "properties": {"addressSpace": {"addressPrefixes": ["[parameters('vnetAddressPrefix')]"]}, "subnets": [{
             "name": "functions", "properties": {
                 "addressPrefix": "[parameters('subnetAddressPrefix')]", "natGateway": {"id": nat_id},
                 "delegations": [{"name": "flex", "properties": {"serviceName": "Microsoft.App/environments"}}]}}]}},
    ]


def function_app() -> list[dict[str, Any]]:
    """The identity, its storage (the durable task hub, pgha's reports and locks, the deployment package),
    the Flex Consumption plan and the app."""
    subnet = "resourceId('Microsoft.Network/virtualNetworks/subnets', variables('vnetName'), 'functions')"
    package = (f"[concat(reference({STORAGE[1:-1]}, '{STORAGE_API}').primaryEndpoints.blob, "
               "'deployments')]")
    return [
        {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": IDENTITY_API,
         "name": "[parameters('appName')]", "location": "[parameters('location')]", "properties": {}},
        {"type": "Microsoft.Storage/storageAccounts", "apiVersion": STORAGE_API, "name": "[variables('storageName')]",
         "location": "[parameters('location')]", "kind": "StorageV2", "sku": {"name": "Standard_LRS"},
         "properties": {"minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False,
                        "allowSharedKeyAccess": False, "supportsHttpsTrafficOnly": True}},
        {"type": "Microsoft.Storage/storageAccounts/blobServices/containers", "apiVersion": STORAGE_API,
         # 63 characters at most, as the schema checks the name's text (an expression, here)
         "name": "[concat(variables('storageName'), '/default/deployments')]", "dependsOn": [STORAGE],
         "properties": {"publicAccess": "None"}},
        {"type": "Microsoft.Web/serverfarms", "apiVersion": WEB_API, "name": "[parameters('appName')]",
         "location": "[parameters('location')]", "kind": "functionapp",
         "sku": {"name": "FC1", "tier": "FlexConsumption"}, "properties": {"reserved": True}},
        {"type": "Microsoft.Web/sites", "apiVersion": WEB_API, "name": "[parameters('appName')]",
         "location": "[parameters('location')]", "kind": "functionapp,linux",
         "identity": {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}},
         "dependsOn": [IDENTITY, STORAGE, "[resourceId('Microsoft.Web/serverfarms', parameters('appName'))]",
                       "[resourceId('Microsoft.Network/virtualNetworks', variables('vnetName'))]"],
         "properties": {
             "serverFarmId": "[resourceId('Microsoft.Web/serverfarms', parameters('appName'))]", "httpsOnly": True,
             "virtualNetworkSubnetId": f"[if(variables('natted'), {subnet}, null())]",
             "siteConfig": {"minTlsVersion": "1.2", "appSettings": [
                 {"name": name, "value": value} for name, value in app_settings().items()]},
             "functionAppConfig": {
                 "deployment": {"storage": {"type": "blobContainer", "value": package, "authentication": {
                     "type": "UserAssignedIdentity", "userAssignedIdentityResourceId": IDENTITY}}},
                 "runtime": {"name": "python", "version": "3.11"},
                 "scaleAndConcurrency": {"maximumInstanceCount": 40, "instanceMemoryMB": 2048}}}},
    ]


def alerting_resources() -> list[dict[str, Any]]:
    """pgha's action group and the rule group deploy keeps current, both as `pgha plan monitoring` renders
    them. The webhook carries the receive_alert function's own key (never the host key, which opens every
    route), read by ARM from the app: it never passes through pgha. That key exists once the code is
    published, hence the second pass (`deployAlerting`)."""
    host = f"reference({SITE[1:-1]}, '{WEB_API}').defaultHostName"
    function = "resourceId('Microsoft.Web/sites/functions', parameters('appName'), 'receive_alert')"
    key = f"listKeys({function}, '{WEB_API}').default"
    group = alerting.action_group("", None)
    group["properties"]["webhookReceivers"][0]["serviceUri"] = (
        f"[format('https://{{0}}/api/alerts?code={{1}}', {host}, {key})]")
    group.update(condition=ALERTING, dependsOn=[SITE])
    group_id = f"[resourceId('Microsoft.Insights/actionGroups', '{alerting.ACTION_GROUP}')]"
    rules = alerting.rule_group([f"[{WORKSPACE}]", f"[{AKS}]"], "[parameters('aksCluster')]",
                                f"[reference({WORKSPACE}, '{alerting.WORKSPACE_API}', 'Full').location]", group_id,
                                STANDARD)
    rules.update(condition=ALERTING, dependsOn=[group_id])
    return [group, rules]


def template() -> dict[str, Any]:
    made_here = {"pgha's own storage account": STORAGE, "the alert rule group": RULE_GROUP}
    grants = [role_assignment(role, scope, [IDENTITY, *([made_here[scope]] if scope in made_here else [])])
              for role, scope in GRANTS]
    return {
        "$schema": SCHEMA, "contentVersion": "1.0.0.0",
        "metadata": {"description": "pgha on Azure Functions (Flex Consumption), beside the runbook's AKS cluster: "
                                    "written by shared/platforms/aks/template.py"},
        "parameters": PARAMETERS,
        "variables": {**VARIABLES, "natted": NATTED},
        "resources": [*function_app(), *network(), *grants, node_group_reader(), *alerting_resources()],
        "outputs": {
            "functionAppName": {"type": "string", "value": "[parameters('appName')]"},
            "alertsUrl": {"type": "string", "value": "[format('https://{0}/api/alerts', "
                                                     f"reference({SITE[1:-1]}, '{WEB_API}').defaultHostName)]"},
            "outboundAddress": {"type": "string", "value": OUTBOUND_ADDRESS},
            "principalId": {"type": "string", "value": PRINCIPAL},
        },
    }
