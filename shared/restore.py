"""The spec of a restore cluster, derived from its source's: pure, so an orchestrator may call it."""

from __future__ import annotations

import hashlib
from typing import Any

from shared.spec import ClusterSpec


def restore_name(source: str, operation_id: str) -> str:
    """`<source>-r<6 hex>`: unique per run (a hash of its operation id), a valid cluster name."""
    return f"{source[:41]}-r{hashlib.sha256(operation_id.encode()).hexdigest()[:6]}"


def restore_spec(source: ClusterSpec, name: str, instances: int, target_time: str | None,
                 target_lsn: str | None, own_secret: bool = False) -> ClusterSpec:
    """A new cluster bootstrapped from the source's object store, archiving under its own server name.

    With `own_secret` (a source torn down, its secret with it) the restore gets an app secret of its own
    and the owner's password is set from it after recovery, as CNPG's bootstrap.recovery.secret does."""
    body: dict[str, Any] = source.dump()
    if own_secret:
        body["bootstrap"] = {**body["bootstrap"], "secretName": f"{name[:45]}-app"}
    body.update({
        "name": name,
        "instances": instances,
        "synchronousReplicas": min(source.synchronous_replicas, instances - 1),
        "sampleData": False,
        "backup": {**body["backup"], "serverName": name, "schedule": None},
        # the source's reach: a client that checks the source can check its restore; but the source's
        # public IP and DNS label stay the source's (the restore's LoadBalancers get IPs of their own)
        "endpoints": {**body["endpoints"], "dnsLabel": None, "publicIpName": None},
        # as the runbook's restore Cluster: no requests or limits, so a restore test fits beside its source
        "resources": None,
        "drills": {"enabled": False},
        "schedules": {},
        "recovery": {
            "source": source.name,
            "serverName": source.server_name,
            "destinationPath": source.backup.destination_path,
            "targetTime": target_time,
            "targetLsn": target_lsn,
            "ownerSecret": f"{name[:45]}-app" if own_secret else None,
        },
    })
    return ClusterSpec.model_validate(body)
