"""Azure-side set-up around the Cluster: operator configuration and the backup identity."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities import platform, spec_of

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def configure_operator(payload: dict[str, Any]) -> dict[str, Any]:
    """The operator's ConfigMap (ENABLE_AZURE_PVC_UPDATES), as the runbook sets it before the Cluster."""
    return platform().configure_operator(spec_of(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def ensure_backup_identity(payload: dict[str, Any]) -> dict[str, Any]:
    """The federated credential that lets the cluster's service account write backups."""
    return platform().ensure_backup_identity(spec_of(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def remove_backup_identity(payload: dict[str, Any]) -> dict[str, Any]:
    return platform().remove_backup_identity(spec_of(payload)).to_dict()
