"""The Cluster itself: namespace, apply, status, zones, delete."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities import platform, typed
from shared.outcome import Outcome
from shared.payloads import DeleteCluster
from shared.spec import ClusterRef, ClusterSpec

bp = df.Blueprint()


@bp.activity_trigger(input_name="spec")
@typed
def ensure_namespace(spec: ClusterSpec) -> Outcome:
    return platform().ensure_namespace(spec)


@bp.activity_trigger(input_name="spec")
@typed
def apply_cluster(spec: ClusterSpec) -> Outcome:
    """Create the Cluster or bring it to the spec; re-applying an applied spec changes nothing."""
    return platform().apply_cluster(spec)


@bp.activity_trigger(input_name="cluster")
@typed
def get_cluster_status(cluster: ClusterRef) -> dict[str, Any]:
    status = platform().cluster_status(cluster.namespace, cluster.name)
    return {**status.dump(), "healthy": status.healthy}


@bp.activity_trigger(input_name="spec")
@typed
def check_zone_spread(spec: ClusterSpec) -> Outcome:
    return platform().check_zone_spread(spec)


@bp.activity_trigger(input_name="cluster")
@typed
def get_stored_spec(cluster: ClusterRef) -> ClusterSpec | None:
    return platform().stored_spec(cluster.namespace, cluster.name)


@bp.activity_trigger(input_name="cluster")
@typed
def get_retained_specs(cluster: ClusterRef) -> list[ClusterSpec]:
    """Specs of deleted incarnations whose backups were kept (what a later deleteBackups needs)."""
    return platform().retained_specs(cluster.namespace, cluster.name)


@bp.activity_trigger(input_name="cluster")
@typed
def delete_cluster(cluster: DeleteCluster) -> Outcome:
    """Delete the Cluster and its data (instances stopped, volumes removed); backups are not touched.

    `graceful: false` is for a cluster whose archive goes with it (a restore test): stopped at once.
    """
    return platform().delete_cluster(cluster.namespace, cluster.name, cluster.graceful)


@bp.activity_trigger(input_name="cluster")
@typed
def count_volumes(cluster: ClusterRef) -> int:
    return platform().remaining_volumes(cluster.namespace, cluster.name)
