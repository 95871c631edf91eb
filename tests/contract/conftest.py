"""Contract fixtures: the fake Kubernetes API server, and a fake Azure (ARM, Prometheus, Log Analytics)
served over HTTPS with a CA made for the test — azure-core sends bearer tokens over TLS only."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from azure.core.credentials import AccessToken

from shared import objectstore
from shared.platforms import installed
from shared.platforms.aks.azure import Azure
from shared.platforms.aks.config import AksSettings
from shared.platforms.aks.kube import Kube, connect
from shared.platforms.aks.platform import AksPlatform
from tests.contract.fake_kube import FakeKubeApi, FakeKubeServer
from tests.contract.installed import install, pgha_role
from tests.contract.scripted_operator import ScriptedOperator


class FakeCredential:
    """DefaultAzureCredential's shape: a token per scope, each call counted."""

    def __init__(self, lifetime: float = 3600) -> None:
        self.scopes: list[str] = []
        self.lifetime = lifetime

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken(f"token-{len(self.scopes)}-for-{scopes[0]}", int(time.time() + self.lifetime))


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeAzure:
    """ARM, Prometheus and Log Analytics as one HTTPS server: `routes` maps (method, path prefix) to an answer."""

    routes: dict[tuple[str, str], Callable[[Seen], tuple[Any, ...]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    ca_path: str = ""

    def answer(self, seen: Seen) -> tuple[Any, ...]:
        """(status, body) or (status, body, headers)."""
        self.seen.append(seen)
        for (method, prefix), handler in self.routes.items():
            if seen.method == method and seen.path.startswith(prefix):
                return handler(seen)
        return 404, {"error": {"code": "NotFound", "message": f"no fake for {seen.method} {seen.path}"}}


CNPG_RELEASES = {"1.29": "1.29.2", "1.30": "1.30.0"}  # the oldest and the newest minor pgha supports


@pytest.fixture(params=sorted(CNPG_RELEASES), ids=[f"cnpg-{m}" for m in sorted(CNPG_RELEASES)])
def kube_api(request: pytest.FixtureRequest) -> Iterator[FakeKubeApi]:
    """The API server of a cluster set up as docs/azure.md says (CNPG with the plugin, both PodMonitor CRDs),
    once per supported CNPG minor: its published CRDs admit what pgha writes."""
    api = FakeKubeApi(cnpg_version=request.param, rbac=pgha_role())
    install(api, version=CNPG_RELEASES[request.param])
    server = FakeKubeServer(api)
    api.server = server  # type: ignore[attr-defined]
    yield api
    server.shutdown()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture()
def azure_fake(ca: trustme.CA, tmp_path: Path) -> Iterator[FakeAzure]:
    fake = FakeAzure()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            code, answer, *extra = fake.answer(Seen(self.command, self.path, dict(self.headers), body))
            xml = isinstance(answer, str)  # Azure Storage answers in XML
            payload = answer.encode() if xml else json.dumps(answer).encode() if answer is not None else b""
            self.send_response(code)
            for name, value in (extra[0] if extra else {}).items():  # e.g. Storage's x-ms-error-code
                self.send_header(name, value)
            self.send_header("Content-Type", "application/xml" if xml else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    fake.url, fake.ca_path = f"https://127.0.0.1:{server.server_address[1]}", str(ca_file)
    yield fake
    server.shutdown()


def settings(azure: FakeAzure | None = None, kubeconfig: str = "", **extra: Any) -> AksSettings:
    base: dict[str, Any] = dict(
        subscription_id="00000000-0000-0000-0000-000000000001", resource_group="rg-cnpg", cluster="aks-primary",
        kubeconfig=kubeconfig, node_resource_group="rg-cnpg-aksmanaged",
        identity_name="mi-aks-cnpg", identity_resource_group="rg-cnpg",
        identity_client_id="9e3b7c1a-5d2f-4a8e-b6c4-2f1d8e7a9b30",
    )
    if azure is not None:
        base.update(arm_endpoint=azure.url, ca_bundle=azure.ca_path, prometheus_endpoint=azure.url)
    return AksSettings(**{**base, **extra})


def kube_for(api: FakeKubeApi, tmp_path: Path) -> Kube:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(api.server.kubeconfig()))  # type: ignore[attr-defined]
    return connect(settings(kubeconfig=str(path)))


@pytest.fixture()
def azure_world(azure_fake: FakeAzure) -> Any:
    """The subscription as docs/azure.md sets it up (tests/contract/azure_world.py), served by azure_fake."""
    from tests.contract.azure_world import AzureWorld

    world = AzureWorld().set_up_as_documented()
    world.serve(azure_fake)
    return world


@pytest.fixture()
def in_cluster_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """pgha runs where the cluster's DNS answers (PGHA_SQL_ACCESS=serviceDns), as on AKS with VNet integration."""
    from shared.platforms.aks import doctor

    monkeypatch.setattr(doctor, "resolves", lambda host: host == doctor.IN_CLUSTER_NAME)


@pytest.fixture()
def aks(kube_api: FakeKubeApi, tmp_path: Path, azure_fake: FakeAzure, azure_world: Any,
        in_cluster_network: None) -> AksPlatform:
    """The adapter on the fake API server, with Azure as azure_world has it."""
    from tests.contract.azure_world import WorldAzure

    aks_settings = settings(azure_fake, kubeconfig=str(tmp_path / "kubeconfig"))
    return AksPlatform(aks_settings, kube_for(kube_api, tmp_path), WorldAzure(aks_settings, azure_fake))


@pytest.fixture()
def operator(kube_api: FakeKubeApi) -> ScriptedOperator:
    return ScriptedOperator(kube_api)


@pytest.fixture()
def on_aks(kube_api: FakeKubeApi, operator: ScriptedOperator, tmp_path: Path, in_cluster_network: None,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[AksPlatform]:
    """The adapter installed as the devhost's platform, over the fake API server and the scripted operator;
    the object store is the operator's `archive` (its instances archive there)."""
    # the storage account is there
    monkeypatch.setattr(objectstore, "container_exists", lambda client, **options: True)
    monkeypatch.setattr(objectstore, "list_names",
                        lambda client, prefix: [n for n in operator.archive if n.startswith(prefix)])
    monkeypatch.setattr(objectstore, "delete_prefix", lambda client, prefix: len(
        [operator.archive.remove(n) for n in list(operator.archive) if n.startswith(prefix)]))
    aks_settings = settings(kubeconfig=str(tmp_path / "kubeconfig"), identity_name="")
    platform = AksPlatform(aks_settings, kube_for(kube_api, tmp_path), Azure(aks_settings, FakeCredential()))
    with installed(platform):
        yield platform
