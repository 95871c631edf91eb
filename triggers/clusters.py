"""HTTP: /api/clusters — deploy, status, teardown."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared import locks
from shared.logs import redact
from shared.model import SpecError
from shared.platform import Platform, PreflightFailed
from shared.platforms import platform_for
from shared.settings import Settings
from shared.spec import DNS_LABEL, ClusterRef, ClusterSpec, parse_spec
from shared.status import ClusterStatus
from triggers.plans import plan
from triggers.responses import ApiError, json_response, query_flag, unexpected
from triggers.starting import Plan, operation_body, operation_location, refuse_if_busy, start_operation

bp = df.Blueprint()


def namespace_of(req: func.HttpRequest) -> str:
    return checked_namespace(req.params.get("namespace"))


def name_of(req: func.HttpRequest) -> str:
    return checked_name(req.route_params.get("name", ""))


def checked_namespace(namespace: str | None) -> str:
    namespace = namespace or Settings.from_env().default_namespace
    if not isinstance(namespace, str) or not re.fullmatch(DNS_LABEL, namespace) or len(namespace) > 63:
        raise ApiError(400, "InvalidQuery", f"namespace {namespace!r} is not a DNS label", "namespace")
    return namespace


def checked_name(name: object) -> str:
    if not isinstance(name, str) or not re.fullmatch(DNS_LABEL, name) or len(name) > 50:
        raise ApiError(404, "ClusterNotFound", f"{name!r} is not a cluster name", "name")
    return name


def existing_spec(req: func.HttpRequest) -> ClusterSpec:
    return stored_spec(namespace_of(req), name_of(req))


def stored_spec(namespace: str, name: str) -> ClusterSpec:
    spec = platform_for().stored_spec(namespace, name)
    if spec is None:
        raise ApiError(404, "ClusterNotFound", f"cluster {namespace}/{name} does not exist", "name")
    return spec


@bp.route(route="clusters", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_deploy(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start deploy_cluster for a ClusterSpec; 400 names the invalid field, 409 when the cluster is busy."""
    try:
        body, callback = operation_body(req, required=True)
        if "namespace" not in body:
            body["namespace"] = namespace_of(req)
        plan = plan_deploy(body)
        if query_flag(req, "dryRun"):
            return dry_run("deploy", plan.fields["spec"])
        return await start_operation(req, client, plan, callback)
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


def dry_run(runbook: str, spec: ClusterSpec) -> func.HttpResponse:
    """`pgha plan` over HTTP: on AKS every object and Azure call the run would make; touches nothing."""
    settings = Settings.from_env()
    if settings.platform != "aks":
        return json_response(200, {"runbook": runbook, "platform": settings.platform, "plan": [],
                                   "note": "the local platform makes Patroni members, not Kubernetes objects: "
                                           "`pgha plan` shows what the same request would apply on AKS"})
    try:
        entries = plan(runbook, spec)
    except PreflightFailed as err:  # what the run's own pre-flight would refuse, before anything is made
        raise ApiError(422, "PreflightFailed", str(err)) from None
    return json_response(200, {"runbook": runbook, "platform": "aks", "plan": entries})


async def start_on_cluster(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, planner: Callable[[str, str, dict[str, Any]], Plan],
) -> func.HttpResponse:
    """An operation on the cluster the route names: its body (and callbackUrl), its plan, its run; every
    error in the one shape."""
    try:
        body, callback = operation_body(req)
        # the planner reads the cluster's record (the Kubernetes API on AKS): off the loop every route shares
        plan = await asyncio.to_thread(planner, namespace_of(req), name_of(req), body)
        return await start_operation(req, client, plan, callback)
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


def spec_of_body(body: object) -> ClusterSpec:
    """A request's ClusterSpec, or a 400 naming the field."""
    try:
        return parse_spec(body)
    except SpecError as err:
        raise ApiError(400, "InvalidSpec", err.message, err.field) from None


def plan_deploy(body: dict[str, Any]) -> Plan:
    spec = spec_of_body(body)
    return Plan("deploy_cluster", spec.ref, {"spec": spec})


@bp.route(route="clusters/{name}", methods=["GET"])
def get_cluster(req: func.HttpRequest) -> func.HttpResponse:
    """The cluster's status in CNPG's vocabulary, how to connect to it, and the operation running on it if any."""
    try:
        spec = existing_spec(req)
        platform = platform_for()
        status = platform.cluster_status(spec.namespace, spec.name)
        # what runs against the spec pgha holds: a hand edit, or a change still waiting for a restart
        body = {**status.dump(), "healthy": status.healthy, "spec": spec.dump(), "drift": drift_of(spec, status),
                **connection_of(platform, spec)}
        holder = locks.holder(Settings.from_env().storage_connection, spec.namespace, spec.name)
        if holder:
            body["operation"] = {"id": holder.operation_id, "runbook": holder.runbook,
                                 "statusQueryGetUri": operation_location(req, holder.operation_id)}
        return json_response(200, body)
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


def connection_of(platform: Platform, spec: ClusterSpec) -> dict[str, Any]:
    """How to connect, or why it could not be read: never a failed GET."""
    try:
        return {"connection": platform.connection(spec).dump()}
    except Exception as err:
        return {"connectionError": f"{type(err).__name__}: {redact(str(err))[:200]}"}


def drift_of(spec: ClusterSpec, status: ClusterStatus) -> list[dict[str, Any]]:
    """The drift, or one entry saying why it could not be read: a member that does not answer is the status's
    to show, never a failed GET."""
    if not status.exists:
        return []
    try:
        return [d.dump() for d in platform_for().drift(spec)]
    except Exception as err:
        return [{"field": "spec", "held": None, "running": f"not compared: {type(err).__name__}: "
                                                           f"{redact(str(err))[:200]}", "instance": None}]


@bp.route(route="clusters/{name}", methods=["DELETE"])
@bp.durable_client_input(client_name="client")
async def start_teardown(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start teardown_cluster; backups are kept unless deleteBackups is true (query or body), which also
    deletes the kept backups of a cluster torn down before."""
    try:
        body, callback = operation_body(req)
        if "deleteBackups" not in body:
            body["deleteBackups"] = query_flag(req, "deleteBackups")
        plan = await plan_teardown(req, client, namespace_of(req), name_of(req), body)
        return await start_operation(req, client, plan, callback)
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


def known_cluster(namespace: str, name: str, kept_too: bool) -> bool:
    """The cluster exists, or (`kept_too`) backups of a torn-down one are kept."""
    platform = platform_for()
    return bool(platform.stored_spec(namespace, name) or (kept_too and platform.retained_specs(namespace, name)))


async def plan_teardown(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, namespace: str, name: str, body: dict[str, Any],
) -> Plan:
    unknown = sorted(set(body) - {"deleteBackups"})
    if unknown:
        raise ApiError(400, "InvalidRequest", "unknown field", unknown[0])
    delete_backups = body.get("deleteBackups", False)
    if not isinstance(delete_backups, bool):
        raise ApiError(400, "InvalidRequest", "deleteBackups must be a boolean", "deleteBackups")
    known = await asyncio.to_thread(known_cluster, namespace, name, delete_backups)
    cluster = ClusterRef(namespace=namespace, name=name)
    if not known:
        await refuse_if_busy(req, client, cluster)
        raise ApiError(404, "ClusterNotFound", f"cluster {namespace}/{name} does not exist", "name")
    return Plan("teardown_cluster", cluster, {"delete_backups": delete_backups})
