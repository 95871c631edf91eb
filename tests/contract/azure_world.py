"""An Azure subscription set up as docs/azure.md says, served by FakeAzure: the AKS cluster, the workload
identity and its federated credentials, the backups storage account and container, role assignments, a
public IP, Managed Prometheus and Log Analytics, the Azure Monitor workspace and the Prometheus rule groups
put there. A test changes what it wants broken.

Shapes, from Azure's REST API specs (azure-rest-api-specs, resource-manager) at the api-versions the SDK
clients send: userAssignedIdentities and federatedIdentityCredentials (msi 2024-11-30), resources list
with `$filter` (resources 2025-04-01), roleAssignments list for a scope with `assignedTo()` and
roleDefinitions by id (authorization 2022-04-01), publicIPAddresses (network 2024-05-01); Blob's Get
Container Properties (`GET ?restype=container`, 404 ContainerNotFound); Prometheus' HTTP API
`/api/v1/query`; Log Analytics' `/v1/workspaces/{id}/query`; the Azure Monitor workspace
(Microsoft.Monitor/accounts 2023-04-03: `location`, `properties.metrics.prometheusQueryEndpoint`) and a
rule group's PUT (Microsoft.AlertsManagement/prometheusRuleGroups 2023-03-01), whose body is judged by the
schema Azure publishes for it (tests/contract/fixtures/arm), a key the schema does not declare refused too
(stricter than a resource provider that ignores one: a misspelt key in pgha's body is a bug either way); the
wording of its 400 for a workspace that does not exist is ours, not captured from Azure. Built-in roles' data
actions are learn.microsoft.com's "Azure built-in roles" (Reader; Storage Blob Data Reader and Contributor);
Monitoring Contributor
(749f88d5-…) is what a rule group's write needs here, its `prometheusRuleGroups/write` among its actions.

ARM refuses what the caller may not read, as Azure RBAC does: a resource list leaves out what the caller has no
`*/read` on, and a role-assignment list or a resource GET outside its reach answers 403 AuthorizationFailed.
The caller is the `oid` of the bearer token.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from azure.core.credentials import AccessToken
from azure.storage.blob import ContainerClient

from shared.platforms.aks.azure import Azure, tls
from tests.contract.arm_schemas import resource_errors
from tests.contract.conftest import FakeAzure, Seen

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
RG = f"/subscriptions/{SUBSCRIPTION}/resourceGroups"
CLIENT_ID = "9e3b7c1a-5d2f-4a8e-b6c4-2f1d8e7a9b30"  # conftest.settings()' PGHA_AKS_IDENTITY_CLIENT_ID
UAMI_OBJECT_ID = "7d6e5f40-0000-4000-8000-00000000beef"  # the workload identity's
PGHA_OBJECT_ID = "4f1c2d3e-0000-4000-8000-0000000a11ce"  # the Function App's managed identity
ROLES = {  # built-in role definition ids, as Azure publishes them
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": ("Storage Blob Data Contributor", [
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action"]),
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": ("Storage Blob Data Reader", [
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"]),
}
CONTRIBUTOR, READER = list(ROLES)
MONITORING_CONTRIBUTOR = "749f88d5-cbae-40b8-bcfc-e573ddc772fa"  # prometheusRuleGroups/write among its actions
CONTROL_READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"  # Reader: actions */read, no data actions


def not_found(what: str) -> tuple[int, Any]:
    return 404, {"error": {"code": "ResourceNotFound", "message": f"The Resource '{what}' was not found."}}


def caller_of(seen: Seen) -> str:
    """The `oid` claim of the request's bearer token (WorldCredential's), "" when it has none."""
    token = seen.headers.get("Authorization", "").removeprefix("Bearer ")
    try:
        payload = token.split(".")[1]
        return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("oid", ""))
    except (IndexError, ValueError):
        return ""


def forbidden(caller: str, action: str, scope: str) -> tuple[int, Any]:
    return 403, {"error": {"code": "AuthorizationFailed", "message": (
        f"The client '{caller}' with object id '{caller}' does not have authorization to perform action "
        f"'{action}' over scope '{scope}' or the scope is invalid.")}}


class WorldCredential:
    """DefaultAzureCredential's shape; its ARM token carries pgha's object id as a JWT's `oid` claim."""

    def __init__(self, object_id: str = PGHA_OBJECT_ID) -> None:
        self.object_id = object_id

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        payload = base64.urlsafe_b64encode(json.dumps({"oid": self.object_id}).encode()).decode().rstrip("=")
        return AccessToken(f"eyJhbGciOiJub25lIn0.{payload}.for-{scopes[0]}", int(time.time() + 3600))


@dataclass
class AzureWorld:
    identity: dict[str, str] | None = field(default_factory=lambda: {"clientId": CLIENT_ID,
                                                                     "principalId": UAMI_OBJECT_ID})
    credentials: list[str] = field(default_factory=list)  # the federated credentials' names
    accounts: dict[str, str] = field(default_factory=lambda: {"pghabackups": "rg-cnpg"})  # account -> its group
    containers: set[str] = field(default_factory=lambda: {"pghabackups/backups"})
    assignments: list[dict[str, str]] = field(default_factory=list)  # principalId, roleDefinitionId, scope
    public_ips: dict[str, dict[str, Any]] = field(default_factory=dict)  # name (node RG) -> sku, allocation
    prometheus_up: bool = True
    logs_up: bool = True
    workspaces: dict[str, str] = field(default_factory=lambda: {"amw-cnpg": "westus3"})  # rg-cnpg's: name -> region
    rule_groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-cased id -> the stored resource

    def account_id(self, account: str) -> str:
        return f"{RG}/{self.accounts[account]}/providers/Microsoft.Storage/storageAccounts/{account}"

    def may_read(self, caller: str, scope: str) -> bool:
        """Reader (`*/read`) assigned to `caller` at `scope` or above it."""
        return any(a["principalId"] == caller and a["roleDefinitionId"].endswith(CONTROL_READER)
                   and scope.lower().startswith(a["scope"].lower()) for a in self.assignments)

    def grant(self, principal: str, role: str, scope: str, condition: str = "") -> None:
        """A role assignment; `condition` an ABAC condition (roleAssignments 2022-04-01 `properties.condition`)."""
        self.assignments.append({"principalId": principal, "roleDefinitionId":
                                 f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                                 "scope": scope, **({"condition": condition, "conditionVersion": "2.0"}
                                                    if condition else {})})

    def set_up_as_documented(self) -> AzureWorld:
        """docs/azure.md's role assignments: the workload identity and pgha write the container; pgha reads
        the storage account (and its role assignments), the node resource group and the Azure Monitor
        workspace, and writes the alert rule group."""
        container = f"{self.account_id('pghabackups')}/blobServices/default/containers/backups"
        self.grant(UAMI_OBJECT_ID, CONTRIBUTOR, container)
        self.grant(PGHA_OBJECT_ID, CONTRIBUTOR, container)
        self.grant(PGHA_OBJECT_ID, CONTROL_READER, self.account_id("pghabackups"))
        self.grant(PGHA_OBJECT_ID, CONTROL_READER, f"{RG}/rg-cnpg-aksmanaged")
        self.grant(PGHA_OBJECT_ID, CONTROL_READER, f"{RG}/rg-cnpg/providers/Microsoft.Monitor/accounts/amw-cnpg")
        self.grant(PGHA_OBJECT_ID, MONITORING_CONTRIBUTOR, f"{RG}/rg-cnpg/providers/Microsoft.AlertsManagement/"
                                                           "prometheusRuleGroups/pgha-cnpg-alerts")
        return self

    def serve(self, fake: FakeAzure) -> None:
        for method in ("GET", "POST", "PUT", "DELETE"):
            fake.routes[(method, "/")] = self.answer

    def answer(self, seen: Seen) -> tuple[Any, ...]:
        parts = urlsplit(seen.path)
        path, query = re.sub("/+", "/", unquote(parts.path)), parse_qs(parts.query)
        lower = path.lower()
        caller = caller_of(seen)
        if lower.endswith("/api/v1/query"):
            return ((200, {"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {}, "value": [time.time(), "1"]}]}}) if self.prometheus_up
                    else (503, {"status": "error", "error": "query engine unavailable"}))
        if re.fullmatch(r"/v1/workspaces/[^/]+/query", path):
            return ((200, {"tables": [{"name": "PrimaryResult", "columns": [{"name": "pgha", "type": "long"}],
                                       "rows": [[1]]}]}) if self.logs_up
                    else (403, {"error": {"code": "InsufficientAccessError", "message": "no access to workspace"}}))
        if query.get("restype") == ["container"]:  # Blob: Get Container Properties, path-style
            if path.strip("/") in self.containers:
                return 200, None, {"ETag": '"0x8DD2A1B2C3D4E5F"', "Last-Modified": "Tue, 01 Dec 2026 08:00:00 GMT"}
            return 404, ('<?xml version="1.0" encoding="utf-8"?><Error><Code>ContainerNotFound</Code><Message>The '
                         "specified container does not exist.</Message></Error>"), {
                "x-ms-error-code": "ContainerNotFound"}
        if "/federatedidentitycredentials" in lower:
            return self.federated(seen, path)
        if lower.endswith("/providers/microsoft.managedidentity/userassignedidentities/mi-aks-cnpg"):
            if self.identity is None:
                return not_found(path)
            return 200, {"id": path, "name": "mi-aks-cnpg", "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                         "location": "westus3", "properties": {"tenantId": "72f988bf-0000-4000-8000-000000000000",
                                                               **self.identity}}
        if lower == f"/subscriptions/{SUBSCRIPTION}/resources":
            wanted = re.search(r"name eq '([^']+)'", query.get("$filter", [""])[0])
            names = [wanted[1]] if wanted else list(self.accounts)
            return 200, {"value": [{"id": self.account_id(n), "name": n, "type": "Microsoft.Storage/storageAccounts",
                                    "location": "westus3", "kind": "StorageV2"} for n in names
                                   if n in self.accounts and self.may_read(caller, self.account_id(n))]}
        if lower.endswith("/providers/microsoft.authorization/roleassignments"):
            scope = path.rsplit("/providers/Microsoft.Authorization/", 1)[0]
            if not self.may_read(caller, scope):
                return forbidden(caller, "Microsoft.Authorization/roleAssignments/read", scope)
            return self.role_assignments(path, query)
        if "/providers/microsoft.authorization/roledefinitions/" in lower:
            role = path.rsplit("/", 1)[1]
            if role == CONTROL_READER:
                name, actions, data = "Reader", ["*/read"], []
            elif role in ROLES:
                (name, data), actions = ROLES[role], []
            else:
                return not_found(path)
            return 200, {"id": path, "name": role, "type": "Microsoft.Authorization/roleDefinitions", "properties": {
                "roleName": name, "type": "BuiltInRole", "permissions": [
                    {"actions": actions, "notActions": [], "dataActions": data, "notDataActions": []}]}}
        if "/providers/microsoft.network/publicipaddresses/" in lower:
            name = path.rsplit("/", 1)[1]
            if not self.may_read(caller, path):
                return forbidden(caller, "Microsoft.Network/publicIPAddresses/read", path)
            if "/resourcegroups/rg-cnpg-aksmanaged/" not in lower or name not in self.public_ips:
                return not_found(path)
            found = self.public_ips[name]
            return 200, {"id": path, "name": name, "type": "Microsoft.Network/publicIPAddresses", "location": "westus3",
                         "sku": {"name": found["sku"], "tier": "Regional"},
                         "properties": {"publicIPAllocationMethod": found["allocation"], "ipAddress": "20.1.2.3"}}
        if "/providers/microsoft.monitor/accounts/" in lower:
            name = path.rsplit("/", 1)[1]
            if not self.may_read(caller, path):
                return forbidden(caller, "Microsoft.Monitor/accounts/read", path)
            if name not in self.workspaces:
                return not_found(path)
            return 200, {"id": path, "name": name, "type": "Microsoft.Monitor/accounts",
                         "location": self.workspaces[name], "properties": {"metrics": {
                             "prometheusQueryEndpoint": f"https://{name}.westus3.prometheus.monitor.azure.com"}}}
        if "/providers/microsoft.alertsmanagement/prometheusrulegroups/" in lower and seen.method == "PUT":
            return self.put_rule_group(seen, path, query, caller)
        return 404, {"error": {"code": "NotFound", "message": f"no fake for {seen.method} {path}"}}

    def may_write_monitoring(self, caller: str, scope: str) -> bool:
        return any(a["principalId"] == caller and a["roleDefinitionId"].endswith(MONITORING_CONTRIBUTOR)
                   and scope.lower().startswith(a["scope"].lower()) for a in self.assignments)

    def put_rule_group(self, seen: Seen, path: str, query: dict[str, list[str]], caller: str) -> tuple[int, Any]:
        """A rule group PUT: refused without Monitoring Contributor (`prometheusRuleGroups/write`), refused when
        its body breaks the published schema (the resource provider's 400, stood in for by the schema the
        provider publishes), or when its first scope is no workspace that exists; stored otherwise."""
        if not self.may_write_monitoring(caller, path):
            return forbidden(caller, "Microsoft.AlertsManagement/prometheusRuleGroups/write", path)
        name = path.rsplit("/", 1)[1]
        resource = {"type": "Microsoft.AlertsManagement/prometheusRuleGroups",
                    "apiVersion": query.get("api-version", [""])[0], "name": name, **(seen.body or {})}
        errors = resource_errors(resource)
        if errors:
            return 400, {"error": {"code": "InvalidRequestContent", "message": "; ".join(errors)}}
        workspace = resource["properties"]["scopes"][0]
        if workspace.rsplit("/", 1)[-1] not in self.workspaces:
            return 400, {"error": {"code": "BadRequest", "message": f"The Azure Monitor workspace '{workspace}' "
                                   "in scopes was not found."}}
        self.rule_groups[path.lower()] = resource
        return 200, {"id": path, **resource}

    def federated(self, seen: Seen, path: str) -> tuple[int, Any]:
        if self.identity is None:
            return not_found(path)
        if path.lower().endswith("/federatedidentitycredentials"):
            return 200, {"value": [{"id": f"{path}/{n}", "name": n, "properties": {}} for n in self.credentials]}
        name = path.rsplit("/", 1)[1]
        if seen.method == "PUT":
            self.credentials.append(name) if name not in self.credentials else None
            return 201, {"id": path, "name": name, **(seen.body or {})}
        if seen.method == "DELETE":
            if name not in self.credentials:
                return not_found(path)
            self.credentials.remove(name)
            return 200, None
        return not_found(path)

    def role_assignments(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        """`assignedTo('<id>')` at a scope: the principal's assignments at, above or below that scope."""
        scope = path.rsplit("/providers/Microsoft.Authorization/", 1)[0].rstrip("/").lower()
        who = re.search(r"assignedTo\('([^']+)'\)", query.get("$filter", [""])[0])
        found = [a for a in self.assignments if (who is None or a["principalId"] == who[1])
                 and (scope.startswith(a["scope"].lower()) or a["scope"].lower().startswith(scope))]
        return 200, {"value": [{"id": f"{a['scope']}/providers/Microsoft.Authorization/roleAssignments/ra-{n}",
                                "name": f"ra-{n}", "type": "Microsoft.Authorization/roleAssignments",
                                "properties": {"principalId": a["principalId"], "principalType": "ServicePrincipal",
                                               "roleDefinitionId": a["roleDefinitionId"], "scope": a["scope"],
                                               **{k: a[k] for k in ("condition", "conditionVersion") if k in a}}}
                               for n, a in enumerate(found)]}


class WorldAzure(Azure):
    """The adapter's Azure calls, with Blob's `https://<account>.blob.core.windows.net/<container>` served
    path-style by the same fake (`<fake>/<account>/<container>`), as Azurite serves it."""

    def __init__(self, aks: Any, fake: FakeAzure, credential: Any | None = None) -> None:
        super().__init__(aks, credential or WorldCredential())
        self.fake = fake

    def container(self, destination_path: str) -> ContainerClient:
        parts = urlsplit(destination_path)
        account, container = parts.netloc.split(".")[0], parts.path.strip("/").split("/")[0]
        return ContainerClient(f"{self.fake.url}/{account}", container, credential=self.credential, **tls(self.aks))
