"""Public rw / ro endpoints limited to source ranges."""

from __future__ import annotations

import azure.durable_functions as df

from activities import platform, typed
from shared.outcome import Outcome
from shared.spec import ClusterRef, ClusterSpec

bp = df.Blueprint()


@bp.activity_trigger(input_name="spec")
@typed
def expose_endpoints(spec: ClusterSpec) -> Outcome:
    return platform().expose_endpoints(spec)


@bp.activity_trigger(input_name="cluster")
@typed
def remove_endpoints(cluster: ClusterRef) -> Outcome:
    return platform().remove_endpoints(cluster.namespace, cluster.name)
