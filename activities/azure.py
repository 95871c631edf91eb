"""Azure-side set-up around the Cluster: operator configuration and the backup identity."""

from __future__ import annotations

import azure.durable_functions as df

from activities import platform, typed
from shared.outcome import Outcome
from shared.spec import ClusterSpec

bp = df.Blueprint()


@bp.activity_trigger(input_name="spec")
@typed
def configure_operator(spec: ClusterSpec) -> Outcome:
    """The operator's ConfigMap (ENABLE_AZURE_PVC_UPDATES), as the runbook sets it before the Cluster."""
    return platform().configure_operator(spec)


@bp.activity_trigger(input_name="spec")
@typed
def ensure_backup_identity(spec: ClusterSpec) -> Outcome:
    """The federated credential that lets the cluster's service account write backups."""
    return platform().ensure_backup_identity(spec)


@bp.activity_trigger(input_name="spec")
@typed
def remove_backup_identity(spec: ClusterSpec) -> Outcome:
    return platform().remove_backup_identity(spec)
