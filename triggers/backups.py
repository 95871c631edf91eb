"""HTTP: /api/clusters/{name}/backups (take + verify) and /restores (restore + checks)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.requests import RestoreRequest, VerifyRequest
from triggers.clusters import name_of, namespace_of, stored_spec
from triggers.responses import ApiError, parse_request, unexpected
from triggers.starting import Plan, operation_body, start_runbook

bp = df.Blueprint()


@bp.route(route="clusters/{name}/backups", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_backup_verification(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start verify_backups: a new (or the latest, or a random) backup, checked in the object store."""
    try:
        body, callback = operation_body(req)
        return await start_runbook(req, client, plan_verify(namespace_of(req), name_of(req), body), callback)
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


def plan_verify(namespace: str, name: str, body: dict[str, Any]) -> Plan:
    spec = stored_spec(namespace, name)
    verify = parse_request(VerifyRequest, body)
    return Plan("verify_backups", spec.namespace, spec.name, {"verify": verify.dump()})


@bp.route(route="clusters/{name}/restores", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_restore(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start restore_cluster: a new cluster from this one's backups, checked, measured, removed."""
    try:
        body, callback = operation_body(req)
        return await start_runbook(req, client, plan_restore(namespace_of(req), name_of(req), body), callback)
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


def plan_restore(namespace: str, name: str, body: dict[str, Any]) -> Plan:
    spec = stored_spec(namespace, name)
    restore = parse_request(RestoreRequest, body)
    if restore.name == spec.name:
        raise ApiError(400, "InvalidRequest", "a restore needs a new cluster name, not the source's", "name")
    return Plan("restore_cluster", spec.namespace, spec.name, {"restore": restore.dump()})
