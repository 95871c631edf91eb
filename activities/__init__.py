"""Activities: one module per concern, each activity one idempotent step of the runbook.

They take JSON (a spec, names) and return JSON (an Outcome); secrets are made and read here and
never returned.
"""

from __future__ import annotations

from typing import Any

from shared.backups import Inventory, read_inventory
from shared.platform import Platform
from shared.platforms import platform_for
from shared.spec import ClusterSpec


def platform() -> Platform:
    return platform_for()


def stored_inventory(spec: ClusterSpec) -> Inventory:
    """The cluster's object store as barman-cloud wrote it (LookupError when its container is missing)."""
    return read_inventory(platform().backup_container(spec), spec.backup.container, spec.server_name)


def spec_of(payload: dict[str, Any]) -> ClusterSpec:
    return ClusterSpec.model_validate(payload.get("spec", payload))
