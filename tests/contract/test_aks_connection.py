"""GET /api/clusters/{name}'s `connection` on AKS: CNPG's in-cluster Services, and the LoadBalancers'
addresses as cloud-provider-azure writes them into the Services' status."""

from __future__ import annotations

from shared.platforms.aks import manifests
from shared.platforms.aks.platform import AksPlatform
from shared.spec import parse_spec
from tests.contract.fake_kube import FakeKubeApi

SPEC = {"name": "pg1", "namespace": "db"}


def test_a_cluster_not_exposed_is_reached_through_its_services_only(aks: AksPlatform) -> None:
    connection = aks.connection(parse_spec(SPEC))
    assert connection.in_cluster == {"rw": "pg1-rw.db.svc:5432", "ro": "pg1-ro.db.svc:5432"}
    assert connection.rw is None and connection.ro is None and "endpoints.enabled false" in connection.note
    assert connection.secret_name == "db-user-pass" and connection.user == "app"


def test_an_exposed_cluster_answers_the_load_balancers_addresses_once_they_have_them(
    aks: AksPlatform, kube_api: FakeKubeApi
) -> None:
    spec = parse_spec({**SPEC, "endpoints": {"enabled": True, "sourceRanges": ["203.0.113.0/24"]}})
    aks.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "db"}})
    aks.expose_endpoints(spec)
    pending = aks.connection(spec)
    assert pending.rw is None and "LoadBalancer rw, ro has no address yet" in pending.note
    path = f"/api/v1/namespaces/db/services/{manifests.service_name(spec, 'rw')}"
    service = kube_api.get(path)
    assert service is not None
    kube_api.put(path, {**service, "status": {"loadBalancer": {"ingress": [{"ip": "20.1.2.3"}]}}})
    exposed = aks.connection(spec)
    assert exposed.rw is not None and exposed.rw.address == "20.1.2.3:5432"
    assert "host=20.1.2.3 port=5432" in exposed.rw.libpq and "sslmode=verify-ca" in exposed.rw.libpq
    assert exposed.ro is None and "LoadBalancer ro has no address yet" in exposed.note
