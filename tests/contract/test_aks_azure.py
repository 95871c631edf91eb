"""The `aks` adapter's Azure calls, with the real SDK clients, against a fake ARM / Prometheus / Log
Analytics served over HTTPS with a CA made for the test: path, api-version, body, the token's scope."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from azure.core.exceptions import ServiceRequestError

from shared.platforms.aks.azure import Azure, credential_name
from shared.platforms.aks.kube import AKS_AAD_SCOPE, connect
from shared.platforms.aks.platform import AksPlatform
from shared.spec import parse_spec
from tests.contract.conftest import FakeAzure, FakeCredential, Seen, settings
from tests.contract.fake_kube import FakeKubeApi

SPEC = parse_spec({"name": "pg1", "namespace": "db"})
ARM = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-cnpg/providers"
ISSUER = "https://westus3.oic.prod-aks.azure.com/0b6f8a52-3c1e-4d7a-9f2b-5e8c1a4d7b36/c2d4e6f8/"
IDENTITY = f"{ARM}/Microsoft.ManagedIdentity/userAssignedIdentities/mi-aks-cnpg/federatedIdentityCredentials"


def query(seen: Seen) -> dict[str, list[str]]:
    return parse_qs(urlsplit(seen.path).query)


def bearer(seen: Seen) -> str:
    return seen.headers.get("Authorization", "")


def aks_cluster(seen: Seen) -> tuple[int, Any]:
    return 200, {"id": f"{ARM}/Microsoft.ContainerService/managedClusters/aks-primary", "name": "aks-primary",
                 "location": "westus3", "properties": {"oidcIssuerProfile": {"enabled": True, "issuerURL": ISSUER}}}


def test_kubernetes_access_from_aks_credentials_and_an_aad_token(
    azure_fake: FakeAzure, kube_api: FakeKubeApi
) -> None:
    kube_api.rbac = None  # any call shows the token; this one is no runbook's
    config = kube_api.server.kubeconfig()  # type: ignore[attr-defined]
    config["users"][0]["user"] = {"exec": {"command": "kubelogin", "args": ["get-token", "--server-id",
                                                                            "6dae42f8-4368-4678-94ff-3960e28e3630"]}}
    encoded = base64.b64encode(yaml.safe_dump(config).encode()).decode()
    azure_fake.routes[("POST", f"{ARM}/Microsoft.ContainerService/managedClusters/aks-primary/"
                               "listClusterUserCredential")] = lambda seen: (
        200, {"kubeconfigs": [{"name": "clusterUser", "value": encoded}]})
    credential = FakeCredential(lifetime=60)  # shorter than the refresh margin: every call fetches anew
    kube = connect(settings(azure_fake), credential)
    kube.get("v1", "Namespace", None, "db")
    kube.get("v1", "Namespace", None, "db")
    (arm,) = azure_fake.seen
    assert query(arm)["api-version"] and bearer(arm).startswith("Bearer token-1-for-https://management.azure.com")
    tokens = [r.authorization for r in kube_api.requests]
    assert all(t.startswith("Bearer token-") and t.endswith(f"-for-{AKS_AAD_SCOPE}") for t in tokens)
    assert len(set(tokens)) == 2, "the token was refreshed before it expired"
    assert credential.scopes.count(AKS_AAD_SCOPE) >= 2


def test_federated_credentials_for_the_clusters_service_account(
    azure_fake: FakeAzure, kube_api: FakeKubeApi, tmp_path: Path
) -> None:
    credentials: dict[str, Any] = {}

    def put(seen: Seen) -> tuple[int, Any]:
        credentials[urlsplit(seen.path).path] = seen.body
        return 201, {"name": urlsplit(seen.path).path.rsplit("/", 1)[1], **seen.body}

    def delete(seen: Seen) -> tuple[int, Any]:
        return (200, None) if credentials.pop(urlsplit(seen.path).path, None) else (404, {"error": {
            "code": "NotFound", "message": "not found"}})

    azure_fake.routes.update({
        ("GET", f"{ARM}/Microsoft.ContainerService/managedClusters/aks-primary"): aks_cluster,
        ("PUT", IDENTITY): put, ("DELETE", IDENTITY): delete, ("GET", IDENTITY): listing(credentials),
    })
    from tests.contract.conftest import kube_for

    aks_settings = settings(azure_fake)
    platform = AksPlatform(aks_settings, kube_for(kube_api, tmp_path), Azure(aks_settings, FakeCredential()))
    made = platform.ensure_backup_identity(SPEC)
    assert made.outcome == "done" and made.data["subject"] == "system:serviceaccount:db:pg1"
    put_call = next(s for s in azure_fake.seen if s.method == "PUT")
    assert urlsplit(put_call.path).path == f"{IDENTITY}/{credential_name('db', 'pg1')}"
    assert credential_name("a-b", "c") != credential_name("a", "b-c")
    assert query(put_call)["api-version"] == ["2024-11-30"]
    assert put_call.body == {"properties": {"issuer": ISSUER, "subject": "system:serviceaccount:db:pg1",
                                            "audiences": ["api://AzureADTokenExchange"]}}
    assert platform.remove_backup_identity(SPEC).outcome == "done"
    assert platform.remove_backup_identity(SPEC).outcome == "unchanged"  # 404: already gone


def test_the_twenty_first_federated_credential_is_refused_before_it_is_asked_for(
    azure_fake: FakeAzure, kube_api: FakeKubeApi, tmp_path: Path
) -> None:
    """Entra refuses a 21st federated credential per user-assigned identity: pgha says so, naming the way out,
    and sends no PUT; re-ensuring one it already made still works at the limit."""
    from tests.contract.conftest import kube_for

    credentials = {f"{IDENTITY}/other-{n}": {} for n in range(19)} | {f"{IDENTITY}/{credential_name('db', 'pg1')}": {}}
    azure_fake.routes.update({
        ("GET", f"{ARM}/Microsoft.ContainerService/managedClusters/aks-primary"): aks_cluster,
        ("GET", IDENTITY): listing(credentials),
        ("PUT", IDENTITY): lambda seen: (201, {"name": urlsplit(seen.path).path.rsplit("/", 1)[1], **seen.body}),
    })
    aks_settings = settings(azure_fake)
    platform = AksPlatform(aks_settings, kube_for(kube_api, tmp_path), Azure(aks_settings, FakeCredential()))
    assert platform.ensure_backup_identity(SPEC).outcome == "done"  # its own: updated in place
    with pytest.raises(RuntimeError, match=r"20 federated credentials, Entra's limit.*PGHA_AKS_IDENTITY_NAME"):
        platform.ensure_backup_identity(parse_spec({"name": "pg2", "namespace": "db"}))
    assert [urlsplit(s.path).path.rsplit("/", 1)[1] for s in azure_fake.seen if s.method == "PUT"] == [
        credential_name("db", "pg1")]


def listing(credentials: dict[str, Any]) -> Any:
    """ARM's list of an identity's federated credentials (one page)."""
    def answer(seen: Seen) -> tuple[int, Any]:
        return 200, {"value": [{"id": path, "name": path.rsplit("/", 1)[1], **(body or {})}
                               for path, body in credentials.items()]}
    return answer


def test_bearer_tokens_never_travel_without_tls(azure_fake: FakeAzure) -> None:
    plain = settings(azure_fake, arm_endpoint=azure_fake.url.replace("https://", "http://"))
    with pytest.raises(ServiceRequestError, match="non-TLS"):
        Azure(plain, FakeCredential()).oidc_issuer()
    assert not azure_fake.seen


def test_prometheus_and_log_analytics_queries(azure_fake: FakeAzure) -> None:
    def prometheus(seen: Seen) -> tuple[int, Any]:
        return 200, {"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": "cnpg_collector_up", "pod": "pg1-1"}, "value": [1764126000.1, "1"]}]}}

    def logs(seen: Seen) -> tuple[int, Any]:
        return 200, {"tables": [{"name": "PrimaryResult", "columns": [
            {"name": "PodName", "type": "string"}, {"name": "LogMessage", "type": "string"}],
            "rows": [["pg1-1", "archive-command: WAL archived"]]}]}

    azure_fake.routes.update({("POST", "/api/v1/query"): prometheus, ("POST", "/v1/workspaces/ws-1/query"): logs})
    credential = FakeCredential()
    azure = Azure(settings(azure_fake, log_workspace_id="ws-1", log_analytics_endpoint=azure_fake.url), credential)
    series = azure.prometheus('cnpg_collector_up{namespace="db"}')
    assert series[0]["metric"]["pod"] == "pg1-1"
    prom = azure_fake.seen[0]
    assert prom.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert bearer(prom).endswith("for-https://prometheus.monitor.azure.com/.default")
    rows = azure.logs("ContainerLogV2 | where PodName startswith 'pg1'")
    assert rows == [{"PodName": "pg1-1", "LogMessage": "archive-command: WAL archived"}]
    log_call = azure_fake.seen[1]
    assert log_call.body["query"].startswith("ContainerLogV2") and log_call.body["timespan"] == "PT3600.0S"
    assert bearer(log_call).endswith("for-https://api.loganalytics.io/.default")


def test_backup_listing_with_a_bearer_token(azure_fake: FakeAzure) -> None:
    """The inventory reads the container with azure-storage-blob and the workload's token (no account key)."""
    listing = (
        '<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="x" ContainerName="backups">'
        "<Blobs><Blob><Name>pg1/wals/0000000100000000/000000010000000000000001</Name><Properties>"
        "<Content-Length>16777216</Content-Length><BlobType>BlockBlob</BlobType></Properties></Blob></Blobs>"
        "<NextMarker /></EnumerationResults>"
    )
    azure_fake.routes[("GET", "/backups")] = lambda seen: (200, listing)
    container = Azure(settings(azure_fake), FakeCredential()).container(f"{azure_fake.url}/backups")
    names = [b.name for b in container.list_blobs(name_starts_with="pg1/wals/")]
    assert names == ["pg1/wals/0000000100000000/000000010000000000000001"]
    (call,) = azure_fake.seen
    assert query(call)["comp"] == ["list"] and query(call)["prefix"] == ["pg1/wals/"]
    assert bearer(call).endswith("for-https://storage.azure.com/.default")


def test_archiver_errors_come_from_log_analytics(azure_fake: FakeAzure, kube_api: FakeKubeApi,
                                                 tmp_path: Path) -> None:
    from tests.contract.conftest import kube_for

    def logs(seen: Seen) -> tuple[int, Any]:
        return 200, {"tables": [{"name": "PrimaryResult", "columns": [
            {"name": "TimeGenerated", "type": "datetime"}, {"name": "PodName", "type": "string"},
            {"name": "Message", "type": "string"}],
            "rows": [["2026-11-26T03:01:00Z", "pg1-1", "archive-command: failed: AccountKey=s3cr3t;"]]}]}

    azure_fake.routes[("POST", "/v1/workspaces/ws-1/query")] = logs
    aks_settings = settings(azure_fake, log_workspace_id="ws-1", log_analytics_endpoint=azure_fake.url)
    platform = AksPlatform(aks_settings, kube_for(kube_api, tmp_path), Azure(aks_settings, FakeCredential()))
    (line,) = platform.archiving_errors(SPEC)
    assert line.startswith("pg1-1: archive-command: failed") and "s3cr3t" not in line
    kql = azure_fake.seen[0].body["query"]
    assert "PodNamespace == 'db'" in kql and "PodName startswith 'pg1-'" in kql
