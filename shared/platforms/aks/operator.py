"""The CloudNativePG operator pgha finds on a cluster: its version, the Barman Cloud plugin beside it, and
what follows for the objects pgha may write.

Sources (cloudnative-pg at v1.30.0 unless said):
- supported minors: docs/src/supported_releases.md ("Support status of CloudNativePG releases": 1.29.x
  and 1.30.x supported; each minor until three months after the next one);
- the version: the operator Deployment's image tag (releases/cnpg-1.30.0.yaml:
  `ghcr.io/cloudnative-pg/cloudnative-pg:1.30.0`); a digest or a tag that is no version says nothing;
- plugins: the operator discovers them as Services of its own namespace labelled `cnpg.io/pluginName`
  (internal/controller/plugin_controller.go); the Barman Cloud plugin's Service carries
  `barman-cloud.cloudnative-pg.io` (plugin-barman-cloud v0.14.0 kubernetes/service.yaml), its kind is
  the CRD objectstores.barmancloud.cnpg.io;
- in-tree `barmanObjectStore`: deprecated since 1.26, removed in 1.31 (docs/src/release_notes/v1.30.md);
- `ENABLE_AZURE_PVC_UPDATES`: read by no operator since 1.26 (docs/src/release_notes/old/v1.26.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.platform import PreflightFailed

SUPPORTED = ((1, 29), (1, 30))  # the oldest CNPG minor still maintained .. the newest released
IN_TREE_GONE = (1, 31)
PLUGIN = "barman-cloud.cloudnative-pg.io"
PLUGIN_LABEL = "cnpg.io/pluginName"
OBJECT_STORE_CRD = "objectstores.barmancloud.cnpg.io"
VERSION_TAG = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?$")

Minor = tuple[int, int]


def image_version(image: str) -> tuple[int, int, int] | None:
    """`…/cloudnative-pg:1.30.0` → (1, 30, 0); a digest (`@sha256:…`) or a tag that is no version → None."""
    if "@" in image:
        return None
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # `registry:5000/cnpg` has a port, not a tag
        return None
    found = VERSION_TAG.match(tag)
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def minor_label(minor: Minor) -> str:
    return f"{minor[0]}.{minor[1]}"


SUPPORTED_RANGE = f"{minor_label(SUPPORTED[0])} to {minor_label(SUPPORTED[-1])}"


@dataclass(frozen=True)
class Operator:
    """What pgha learned of the running operator; `version` None when its image does not say."""

    image: str
    version: tuple[int, int, int] | None
    plugin: bool

    @property
    def minor(self) -> Minor:
        """The minor pgha writes for: the running one, or the newest supported when unknown."""
        return self.version[:2] if self.version else SUPPORTED[-1]

    def describe(self) -> str:
        if self.version is None:
            return (f"CNPG version unknown (image {self.image or 'unset'}): assuming {minor_label(SUPPORTED[-1])}, "
                    "the newest pgha supports")
        return f"CNPG {'.'.join(map(str, self.version))}"

    def support_problem(self) -> str | None:
        """Why pgha cannot work with this operator, or None."""
        if self.version is not None and self.minor < SUPPORTED[0]:
            return (f"CNPG {'.'.join(map(str, self.version))} is older than pgha supports ({SUPPORTED_RANGE}): "
                    f"upgrade the operator to {minor_label(SUPPORTED[-1])}")
        return None

    def support_note(self) -> str:
        if self.version is not None and self.minor > SUPPORTED[-1]:
            return f"; newer than pgha was tested with ({SUPPORTED_RANGE}), written for {minor_label(SUPPORTED[-1])}"
        return ""


def operator_from(deployment: dict[str, Any] | None, plugin_services: list[dict[str, Any]],
                  object_store_crd: bool) -> Operator:
    """The operator from its Deployment (the `manager` container's image), and whether the plugin is there."""
    containers = (((deployment or {}).get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    image = next((c.get("image", "") for c in containers if c.get("name") == "manager"),
                 containers[0].get("image", "") if containers else "")
    plugin = object_store_crd and any(
        ((s.get("metadata") or {}).get("labels") or {}).get(PLUGIN_LABEL) == PLUGIN for s in plugin_services)
    return Operator(image=image, version=image_version(image), plugin=plugin)


def resolve_backup_method(requested: str, operator: Operator) -> tuple[str, str]:
    """`auto` → the plugin when installed, else in-tree; a named method is checked. Returns the method and
    what the report should say of it; refuses what the operator cannot do."""
    method = requested if requested != "auto" else ("plugin" if operator.plugin else "barmanObjectStore")
    why = "auto: " if requested == "auto" else ""
    if method == "plugin":
        if not operator.plugin:
            raise PreflightFailed(
                f"backup.method plugin: the Barman Cloud plugin is not installed (no Service labelled "
                f"{PLUGIN_LABEL}={PLUGIN} in the operator's namespace, or no CRD {OBJECT_STORE_CRD}); install "
                "plugin-barman-cloud, or set backup.method barmanObjectStore")
        return method, f"{why}Barman Cloud plugin ({PLUGIN})"
    if operator.minor >= IN_TREE_GONE:
        raise PreflightFailed(
            f"backup.method barmanObjectStore: the in-tree Barman Cloud support is gone in CNPG "
            f"{minor_label(IN_TREE_GONE)}+ ({operator.describe()}); install plugin-barman-cloud and use "
            "backup.method plugin (or auto)")
    if operator.plugin:
        return method, (f"{why}in-tree barmanObjectStore, deprecated since CNPG 1.26 and removed in "
                        f"{minor_label(IN_TREE_GONE)}: the Barman Cloud plugin is installed, prefer backup.method "
                        "plugin")
    return method, f"{why}in-tree barmanObjectStore (the Barman Cloud plugin is not installed)"
