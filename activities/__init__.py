"""Activities: one module per concern, each activity one idempotent step of the runbook.

They take JSON (a spec, names) and return JSON (an Outcome); secrets are made and read here and
never returned.
"""

from __future__ import annotations

from typing import Any

from shared.platform import Platform
from shared.platforms import platform_for
from shared.spec import ClusterSpec


def platform() -> Platform:
    return platform_for()


def spec_of(payload: dict[str, Any]) -> ClusterSpec:
    return ClusterSpec.model_validate(payload.get("spec", payload))
