"""HTTP: /api/clusters/{name}/backups (take + verify) and /restores (restore + checks)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.platforms import platform_for
from shared.requests import RestoreRequest, VerifyRequest
from triggers.clusters import start_on_cluster, stored_spec
from triggers.responses import ApiError, parse_request
from triggers.starting import Plan

bp = df.Blueprint()


@bp.route(route="clusters/{name}/backups", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_backup_verification(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start verify_backups: a new (or the latest, or a random) backup, checked in the object store."""
    return await start_on_cluster(req, client, plan_verify)


def plan_verify(namespace: str, name: str, body: dict[str, Any]) -> Plan:
    spec = stored_spec(namespace, name)
    verify = parse_request(VerifyRequest, body)
    return Plan("verify_backups", spec.ref, {"verify": verify})


@bp.route(route="clusters/{name}/restores", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_restore(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start restore_cluster: a new cluster from this one's backups, checked, measured, removed."""
    return await start_on_cluster(req, client, plan_restore)


def plan_restore(namespace: str, name: str, body: dict[str, Any]) -> Plan:
    """From the cluster's backups; for a cluster torn down with its backups kept, from those (the newest
    generation, or the one whose server name `sourceServerName` names)."""
    body = dict(body)
    server_name = body.pop("sourceServerName", None)
    restore = parse_request(RestoreRequest, body)
    fields: dict[str, Any] = {"restore": restore}
    live = platform_for().stored_spec(namespace, name)
    if live is not None and server_name is None:
        spec = live
    else:
        kept = [s for s in platform_for().retained_specs(namespace, name)
                if server_name is None or s.server_name == server_name]
        if not kept:
            what = f"kept backups under server name {server_name!r}" if server_name else "kept backups"
            raise ApiError(404, "ClusterNotFound", f"cluster {namespace}/{name} does not exist and has no {what}",
                           "sourceServerName" if server_name else "name")
        spec = kept[-1]
        fields["kept_source"] = spec
    if restore.name == spec.name:
        raise ApiError(400, "InvalidRequest", "a restore needs a new cluster name, not the source's", "name")
    return Plan("restore_cluster", spec.ref, fields)
