"""requirements.txt's lower bounds are the versions the suite runs with, and each bound that is about a
feature says which: these tests fail when the installed versions fall below a bound or lose the feature."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import pytest

from shared.platforms.aks import kube

REQUIREMENTS = Path(__file__).parents[2] / "requirements.txt"
BOUND = re.compile(r"^([A-Za-z0-9_.-]+)(\[[^\]]+\])?>=([0-9.]+)")


def numbers(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def bounds() -> list[tuple[str, str]]:
    found = [BOUND.match(line.strip()) for line in REQUIREMENTS.read_text().splitlines()]
    return [(m[1], m[3]) for m in found if m]


@pytest.mark.parametrize(("package", "lowest"), bounds())
def test_the_suite_runs_on_or_above_each_bound(package: str, lowest: str) -> None:
    assert numbers(version(package)) >= numbers(lowest), f"{package} {version(package)} is below {lowest}"


def test_kubernetes_37_has_the_calls_the_generic_verbs_make() -> None:
    from kubernetes.client import ApiClient

    assert callable(ApiClient.param_serialize) and callable(ApiClient.response_deserialize)


@pytest.mark.parametrize("value", [bytes, bytearray, str])
def test_the_aks_kubeconfig_is_read_as_any_sdk_version_returns_it(value: type,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """azure-mgmt-containerservice 33-40 answer a bytearray, 41+ bytes (CredentialResult.value)."""
    text = "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user: {exec: {command: kubelogin}}\n"
    answer = SimpleNamespace(kubeconfigs=[SimpleNamespace(value=value(text, "utf-8") if value is not str else text)])

    class Clusters:
        def list_cluster_user_credentials(self, group: str, name: str) -> SimpleNamespace:
            return answer

    class Client:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.managed_clusters = Clusters()

    import azure.mgmt.containerservice as containerservice

    monkeypatch.setattr(containerservice, "ContainerServiceClient", Client)
    config = kube.aks_kubeconfig(kube.AksSettings(subscription_id="s", resource_group="rg", cluster="aks"), object())
    assert config["users"][0]["user"] == {"token": "set-per-request"}


def test_every_package_the_app_imports_is_required() -> None:
    """What a Function App built from requirements.txt lacks fails only at run time: every module of a
    distribution imported (at any depth) by the app's own code must be a requirement."""
    import ast
    import sys
    from importlib.metadata import packages_distributions

    root = REQUIREMENTS.parent
    required = {re.split(r"[\[<>=]", line.strip())[0].lower().replace("_", "-")
                for line in REQUIREMENTS.read_text().splitlines() if line.strip() and not line.startswith("#")}
    owners = packages_distributions()
    missing: set[str] = set()
    for folder in ("shared", "activities", "orchestrations", "triggers"):
        for source in (root / folder).rglob("*.py"):
            if source == root / "shared/platforms/local/walservice/server.py":
                continue  # run by the local stack's interpreter, which has barman; never imported by the app
            for node in ast.walk(ast.parse(source.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                         else [])
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in ("shared", "activities", "orchestrations", "triggers"):
                        continue
                    parts = name.split(".")
                    dists = {d.lower() for d in owners.get(top, [])}
                    if top == "azure":  # a namespace package: the distribution is named by the deeper module
                        dists = {f"azure-{'-'.join(parts[1:3])}", f"azure-{parts[1]}"} & (
                            {d.lower() for d in owners.get("azure", [])})
                    if dists and not dists & required:
                        missing.add(f"{name} ({', '.join(sorted(dists))})")
    assert not missing, f"imported but not in requirements.txt: {sorted(missing)}"
