"""The app user's secret: generated here, stored by the platform, never returned."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities import platform, spec_of

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def ensure_app_secret(payload: dict[str, Any]) -> dict[str, Any]:
    """Create the bootstrap secret with a random password unless it exists (then it is kept as is)."""
    return platform().ensure_app_secret(spec_of(payload), payload.get("operationId")).to_dict()


@bp.activity_trigger(input_name="payload")
def apply_owner_secret(payload: dict[str, Any]) -> dict[str, Any]:
    """A restore with a secret of its own: the recovered owner's password is set from it."""
    return platform().apply_owner_secret(spec_of(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def delete_app_secret(payload: dict[str, Any]) -> dict[str, Any]:
    return platform().delete_app_secret(spec_of(payload)).to_dict()
