"""The Cluster itself: namespace, apply, status, zones, delete."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities import platform, spec_of

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def ensure_namespace(payload: dict[str, Any]) -> dict[str, Any]:
    return platform().ensure_namespace(spec_of(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def apply_cluster(payload: dict[str, Any]) -> dict[str, Any]:
    """Create the Cluster or bring it to the spec; re-applying an applied spec changes nothing."""
    return platform().apply_cluster(spec_of(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def get_cluster_status(payload: dict[str, Any]) -> dict[str, Any]:
    status = platform().cluster_status(payload["namespace"], payload["name"])
    return {**status.dump(), "healthy": status.healthy}


@bp.activity_trigger(input_name="payload")
def check_zone_spread(payload: dict[str, Any]) -> dict[str, Any]:
    return platform().check_zone_spread(spec_of(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def get_stored_spec(payload: dict[str, Any]) -> dict[str, Any] | None:
    spec = platform().stored_spec(payload["namespace"], payload["name"])
    return spec.dump() if spec else None


@bp.activity_trigger(input_name="payload")
def get_retained_specs(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Specs of deleted incarnations whose backups were kept (what a later deleteBackups needs)."""
    return [spec.dump() for spec in platform().retained_specs(payload["namespace"], payload["name"])]


@bp.activity_trigger(input_name="payload")
def delete_cluster(payload: dict[str, Any]) -> dict[str, Any]:
    """Delete the Cluster and its data (instances stopped, volumes removed); backups are not touched.

    `graceful: false` is for a cluster whose archive goes with it (a restore test): stopped at once.
    """
    return platform().delete_cluster(payload["namespace"], payload["name"], payload.get("graceful", True)).to_dict()


@bp.activity_trigger(input_name="payload")
def count_volumes(payload: dict[str, Any]) -> int:
    return platform().remaining_volumes(payload["namespace"], payload["name"])
