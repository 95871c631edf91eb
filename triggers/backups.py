"""HTTP: /api/clusters/{name}/backups (take + verify) and /restores (restore + checks)."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from shared.requests import RestoreRequest, VerifyRequest
from triggers.clusters import existing_spec
from triggers.responses import ApiError, request_model
from triggers.starting import start_runbook

bp = df.Blueprint()


@bp.route(route="clusters/{name}/backups", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_backup_verification(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start verify_backups: a new (or the latest, or a random) backup, checked in the object store."""
    try:
        spec = existing_spec(req)
        verify = request_model(req, VerifyRequest)
        return await start_runbook(req, client, "verify_backups", spec.namespace, spec.name,
                                   {"verify": verify.dump()})
    except ApiError as err:
        return err.response()


@bp.route(route="clusters/{name}/restores", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_restore(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start restore_cluster: a new cluster from this one's backups, checked, measured, removed."""
    try:
        spec = existing_spec(req)
        restore = request_model(req, RestoreRequest)
        if restore.name == spec.name:
            raise ApiError(400, "InvalidRequest", "a restore needs a new cluster name, not the source's", "name")
        return await start_runbook(req, client, "restore_cluster", spec.namespace, spec.name,
                                   {"restore": restore.dump()})
    except ApiError as err:
        return err.response()
