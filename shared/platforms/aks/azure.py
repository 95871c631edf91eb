"""The Azure calls of the `aks` adapter, each with the real SDK client and DefaultAzureCredential:
the AKS OIDC issuer, federated identity credentials, the backups' blob container, Azure Monitor
managed Prometheus and Log Analytics. Bearer tokens travel over TLS only (azure-core refuses
otherwise); `PGHA_CA_BUNDLE` names the CA to verify with when it is not the system's."""

from __future__ import annotations

import base64
import copy
import fnmatch
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.objectstore import QUICK
from shared.platforms.aks.config import AksSettings

AUDIENCE = "api://AzureADTokenExchange"
PROMETHEUS_SCOPE = "https://prometheus.monitor.azure.com/.default"
LOG_ANALYTICS_AUDIENCE = "https://api.loganalytics.io"
# learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations: "A maximum of 20
# federated identity credentials can be added to an application or user-assigned managed identity"
FEDERATED_CREDENTIALS_LIMIT = 20
PUBLIC_IP_API = "2024-05-01"


@dataclass(frozen=True)
class Identity:
    client_id: str
    principal_id: str


@dataclass(frozen=True)
class Grant:
    """One role assignment as it bears on data: the role's data actions and the ABAC condition, if any."""

    role: str
    scope: str
    data_actions: list[str]
    not_data_actions: list[str]
    condition: str = ""

    def permits(self, action: str) -> bool:
        """Azure RBAC's matching: `*` is a wildcard within an action string; a NotDataAction subtracts."""
        return (any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in self.data_actions)
                and not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in self.not_data_actions))


@cache
def default_credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def tls(aks: AksSettings) -> dict[str, Any]:
    return {"connection_verify": aks.ca_bundle} if aks.ca_bundle else {}


def service_account_subject(namespace: str, cluster: str) -> str:
    """CNPG names a Cluster's service account after the Cluster."""
    return f"system:serviceaccount:{namespace}:{cluster}"


def credential_name(namespace: str, cluster: str) -> str:
    """One federated credential per cluster (and per restore cluster): readable, and unique by a hash of
    namespace/cluster (`a-b`/`c` and `a`/`b-c` must not share one)."""
    digest = hashlib.sha256(f"{namespace}/{cluster}".encode()).hexdigest()[:12]
    return f"pgha-{cluster[:60]}-{digest}"


class Azure:
    def __init__(self, aks: AksSettings, credential: Any | None = None) -> None:
        self.aks = aks
        self.credential = credential or default_credential()
        self.options: dict[str, Any] = {}  # per-call options of azure-core (retries, timeouts)

    def looking(self) -> Azure:
        """This Azure, each call tried once with short timeouts: for a look that should answer at once."""
        quick = copy.copy(self)
        quick.options = dict(QUICK)
        return quick

    def _containers(self) -> Any:
        from azure.mgmt.containerservice import ContainerServiceClient

        return ContainerServiceClient(self.credential, self.aks.subscription_id, base_url=self.aks.arm_endpoint,
                                      **tls(self.aks))

    def _identities(self) -> Any:
        from azure.mgmt.msi import ManagedServiceIdentityClient

        return ManagedServiceIdentityClient(self.credential, self.aks.subscription_id,
                                            base_url=self.aks.arm_endpoint, **tls(self.aks))

    def oidc_issuer(self) -> str:
        """`az aks show --query oidcIssuerProfile.issuerUrl`."""
        cluster = self._containers().managed_clusters.get(self.aks.resource_group, self.aks.cluster)
        issuer = getattr(getattr(cluster, "oidc_issuer_profile", None), "issuer_url", None)
        if not issuer:
            raise RuntimeError(f"AKS cluster {self.aks.cluster} has no OIDC issuer: enable --enable-oidc-issuer "
                               "and --enable-workload-identity")
        return str(issuer)

    def identity(self) -> Identity:
        """`az identity show`: the workload identity (UAMI) the clusters' service accounts federate with."""
        found = self._identities().user_assigned_identities.get(self.aks.identity_resource_group,
                                                                self.aks.identity_name, **self.options)
        return Identity(client_id=str(found.client_id or ""), principal_id=str(found.principal_id or ""))

    def federated_credentials(self) -> list[str]:
        """The names of the identity's federated credentials (`az identity federated-credential list`)."""
        credentials = self._identities().federated_identity_credentials
        return [str(c.name) for c in credentials.list(self.aks.identity_resource_group, self.aks.identity_name,
                                                      **self.options)]

    def ensure_federated_credential(self, namespace: str, cluster: str) -> dict[str, str]:
        """`az identity federated-credential create` for the cluster's service account (create or update)."""
        issuer = self.oidc_issuer()
        name = credential_name(namespace, cluster)
        subject = service_account_subject(namespace, cluster)
        credentials = self._identities().federated_identity_credentials
        existing = self.federated_credentials()
        if name not in existing and len(existing) >= FEDERATED_CREDENTIALS_LIMIT:
            raise RuntimeError(
                f"identity {self.aks.identity_name} already has {len(existing)} federated credentials, Entra's limit "
                f"per user-assigned identity: tear down clusters or restores still holding one, or use another "
                "identity (PGHA_AKS_IDENTITY_NAME)")
        credentials.create_or_update(
            self.aks.identity_resource_group, self.aks.identity_name, name,
            {"properties": {"issuer": issuer, "subject": subject, "audiences": [AUDIENCE]}},
        )
        return {"name": name, "subject": subject, "issuer": issuer}

    def caller_object_id(self) -> str:
        """pgha's own Entra object id: the `oid` claim of its ARM token (whose role assignments say what it may
        do); "" when the token carries none."""
        token = self.credential.get_token(f"{self.aks.arm_endpoint}/.default").token
        try:
            payload = token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError):
            return ""
        return str(claims.get("oid", ""))

    def _resources(self) -> Any:
        from azure.mgmt.resource.resources import ResourceManagementClient

        return ResourceManagementClient(self.credential, self.aks.subscription_id, base_url=self.aks.arm_endpoint,
                                        **tls(self.aks))

    def location_of(self, resource_id: str, api_version: str) -> str:
        """A resource's region (a rule group lives in its Azure Monitor workspace's)."""
        found = self._resources().resources.get_by_id(resource_id, api_version=api_version, **self.options)
        return str(found.location)

    def put_resource(self, resource: dict[str, Any], resource_id: str) -> None:
        """Create or update an ARM resource as rendered (`type`, `apiVersion`, `name` say where it goes)."""
        body = {key: resource[key] for key in ("location", "tags", "properties") if key in resource}
        self._resources().resources.begin_create_or_update_by_id(
            resource_id, body, api_version=resource["apiVersion"], **self.options).result()

    def storage_account_id(self, account: str) -> str | None:
        """The storage account's resource id, found by name in the subscription (`az storage account show`)."""
        found = self._resources().resources.list(
            filter=f"resourceType eq 'Microsoft.Storage/storageAccounts' and name eq '{account}'", **self.options)
        return next((str(r.id) for r in found), None)

    def public_ip(self, name: str) -> dict[str, Any] | None:
        """A public IP in the AKS node resource group (where the cloud provider looks for a named one)."""
        ip_id = (f"/subscriptions/{self.aks.subscription_id}/resourceGroups/{self.aks.node_resource_group}"
                 f"/providers/Microsoft.Network/publicIPAddresses/{name}")
        try:
            found = self._resources().resources.get_by_id(ip_id, api_version=PUBLIC_IP_API, **self.options)
        except ResourceNotFoundError:
            return None
        return {"sku": (found.sku.name if found.sku else ""),
                "allocation": (found.properties or {}).get("publicIPAllocationMethod", "")}

    def data_actions(self, principal_id: str, scope: str) -> list[Grant]:
        """The roles assigned to `principal_id` that apply at `scope` (inherited ones included), with their
        data actions: `az role assignment list --assignee <id> --scope <scope> --include-inherited`."""
        from azure.mgmt.authorization import AuthorizationManagementClient

        client = AuthorizationManagementClient(self.credential, self.aks.subscription_id,
                                               base_url=self.aks.arm_endpoint, **tls(self.aks))
        grants = []
        for assignment in client.role_assignments.list_for_scope(scope, filter=f"assignedTo('{principal_id}')",
                                                                 **self.options):
            definition = client.role_definitions.get_by_id(assignment.role_definition_id, **self.options)
            allowed = [a for p in definition.permissions or [] for a in p.data_actions or []]
            denied = [a for p in definition.permissions or [] for a in p.not_data_actions or []]
            grants.append(Grant(role=str(definition.role_name), scope=str(assignment.scope), data_actions=allowed,
                                not_data_actions=denied, condition=str(assignment.condition or "")))
        return grants

    def delete_federated_credential(self, namespace: str, cluster: str) -> bool:
        """False when it was already gone."""
        try:
            self._identities().federated_identity_credentials.delete(
                self.aks.identity_resource_group, self.aks.identity_name, credential_name(namespace, cluster))
            return True
        except ResourceNotFoundError:
            return False

    def container(self, destination_path: str) -> ContainerClient:
        """The backups' container, `https://<account>.blob.core.windows.net/<container>`."""
        parts = urlsplit(destination_path)
        container = parts.path.strip("/").split("/")[0]
        return ContainerClient(f"{parts.scheme}://{parts.netloc}", container, credential=self.credential,
                               **tls(self.aks))

    def prometheus(self, query: str) -> list[dict[str, Any]]:
        """An instant query against the Azure Monitor workspace (its vector result)."""
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import (
            BearerTokenCredentialPolicy,
            ContentDecodePolicy,
            HeadersPolicy,
            RetryPolicy,
        )
        from azure.core.rest import HttpRequest

        endpoint = self.aks.prometheus_endpoint.rstrip("/")
        if not endpoint:
            raise RuntimeError("PGHA_PROMETHEUS_ENDPOINT is not set")
        client = PipelineClient(base_url=endpoint, policies=[
            HeadersPolicy(), RetryPolicy(retry_total=2),
            BearerTokenCredentialPolicy(self.credential, PROMETHEUS_SCOPE), ContentDecodePolicy(),
        ], **tls(self.aks))
        response = client.send_request(HttpRequest("POST", f"{endpoint}/api/v1/query", data={"query": query}),
                                       **self.options)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise RuntimeError(f"Prometheus query failed ({response.status_code}): {body.get('error', '')[:300]}")
        return list(body["data"]["result"])

    def logs(self, query: str, hours: int = 1) -> list[dict[str, Any]]:
        """Rows of a Log Analytics query (container logs of the operator and the instances)."""
        from azure.monitor.query import LogsQueryClient, LogsQueryStatus

        client = LogsQueryClient(self.credential, endpoint=self.aks.log_analytics_endpoint,
                                 audience=LOG_ANALYTICS_AUDIENCE, **tls(self.aks))
        result = client.query_workspace(self.aks.log_workspace_id, query, timespan=timedelta(hours=hours),
                                        **self.options)
        if result.status != LogsQueryStatus.SUCCESS:
            raise RuntimeError(f"Log Analytics query partly failed: {result.partial_error}")
        return [dict(zip(table.columns, row, strict=True)) for table in result.tables for row in table.rows]
