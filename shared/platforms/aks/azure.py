"""The Azure calls of the `aks` adapter, each with the real SDK client and DefaultAzureCredential:
the AKS OIDC issuer, federated identity credentials, the backups' blob container, Azure Monitor
managed Prometheus and Log Analytics. Bearer tokens travel over TLS only (azure-core refuses
otherwise); `PGHA_CA_BUNDLE` names the CA to verify with when it is not the system's."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.platforms.aks.config import AksSettings

AUDIENCE = "api://AzureADTokenExchange"
PROMETHEUS_SCOPE = "https://prometheus.monitor.azure.com/.default"
LOG_ANALYTICS_AUDIENCE = "https://api.loganalytics.io"
# learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations: "A maximum of 20
# federated identity credentials can be added to an application or user-assigned managed identity"
FEDERATED_CREDENTIALS_LIMIT = 20


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

    def ensure_federated_credential(self, namespace: str, cluster: str) -> dict[str, str]:
        """`az identity federated-credential create` for the cluster's service account (create or update)."""
        issuer = self.oidc_issuer()
        name = credential_name(namespace, cluster)
        subject = service_account_subject(namespace, cluster)
        credentials = self._identities().federated_identity_credentials
        existing = [c.name for c in credentials.list(self.aks.identity_resource_group, self.aks.identity_name)]
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
        response = client.send_request(HttpRequest("POST", f"{endpoint}/api/v1/query", data={"query": query}))
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise RuntimeError(f"Prometheus query failed ({response.status_code}): {body.get('error', '')[:300]}")
        return list(body["data"]["result"])

    def logs(self, query: str, hours: int = 1) -> list[dict[str, Any]]:
        """Rows of a Log Analytics query (container logs of the operator and the instances)."""
        from azure.monitor.query import LogsQueryClient, LogsQueryStatus

        client = LogsQueryClient(self.credential, endpoint=self.aks.log_analytics_endpoint,
                                 audience=LOG_ANALYTICS_AUDIENCE, **tls(self.aks))
        result = client.query_workspace(self.aks.log_workspace_id, query, timespan=timedelta(hours=hours))
        if result.status != LogsQueryStatus.SUCCESS:
            raise RuntimeError(f"Log Analytics query partly failed: {result.partial_error}")
        return [dict(zip(table.columns, row, strict=True)) for table in result.tables for row in table.rows]
