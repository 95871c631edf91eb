"""`pgha plan`: every object and Azure call, as YAML that parses and round-trips to the adapter's objects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from devhost.cli import main
from shared.platforms.aks import manifests
from shared.platforms.aks.azure import credential_name
from shared.platforms.aks.config import AksSettings
from shared.platforms.aks.platform import SPEC_ANNOTATION
from shared.spec import parse_spec

SPEC_FILE = Path(__file__).parent / "fixtures" / "runbook" / "spec.json"


@pytest.fixture()
def identity(monkeypatch: pytest.MonkeyPatch) -> AksSettings:
    for name, value in {"PGHA_AKS_SUBSCRIPTION_ID": "sub-1", "PGHA_AKS_RESOURCE_GROUP": "rg-cnpg",
                        "PGHA_AKS_CLUSTER": "aks-primary", "PGHA_AKS_IDENTITY_NAME": "mi-aks-cnpg",
                        "PGHA_AKS_IDENTITY_CLIENT_ID": "9e3b7c1a-5d2f-4a8e-b6c4-2f1d8e7a9b30"}.items():
        monkeypatch.setenv(name, value)
    return AksSettings.from_env()


def test_deploy_plan_round_trips_to_the_objects_it_applies(
    identity: AksSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "deploy", "--platform", "aks", "--spec", str(SPEC_FILE)]) == 0
    out = capsys.readouterr().out
    documents = list(yaml.safe_load_all(out))
    objects = [d for d in documents if "kind" in d]
    spec = parse_spec(json.loads(SPEC_FILE.read_text()))
    expected = [o for o in manifests.deploy_objects(spec, identity)]
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [("Namespace", spec.namespace)] + [
        (o["kind"], o["metadata"]["name"]) for o in expected]
    cluster = next(o for o in objects if o["kind"] == "Cluster")
    assert json.loads(cluster["metadata"].pop("annotations")[SPEC_ANNOTATION]) == spec.dump()
    assert cluster == manifests.cluster(spec, identity)
    secret = next(o for o in objects if o["kind"] == "Secret")
    assert secret["data"]["password"] == "<generated in the activity>"
    fic_name = credential_name(spec.namespace, spec.name)
    assert "PUT /subscriptions/sub-1/resourceGroups/rg-cnpg/providers/Microsoft.ManagedIdentity/" \
           f"userAssignedIdentities/mi-aks-cnpg/federatedIdentityCredentials/{fic_name}" in out
    fic = next(d for d in documents if "properties" in d)
    assert fic["properties"]["subject"] == f"system:serviceaccount:{spec.namespace}:{spec.name}"


@pytest.mark.parametrize("runbook", ["teardown", "restore", "verify", "drill"])
def test_every_runbook_has_a_plan_that_parses(identity: AksSettings, capsys: pytest.CaptureFixture[str],
                                              runbook: str) -> None:
    assert main(["plan", runbook, "--spec", str(SPEC_FILE)]) == 0
    out = capsys.readouterr().out
    assert list(yaml.safe_load_all(out)) and "# step:" in out


def test_a_bad_spec_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "spec.yaml"
    bad.write_text("name: UPPER\n")
    assert main(["plan", "deploy", "--spec", str(bad)]) == 2
    assert "name" in capsys.readouterr().err
