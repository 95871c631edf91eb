"""HTTP: GET /api/openapi.json — the API as an OpenAPI 2.0 document, importable as a Logic Apps custom
connector (Power Platform connectors take Swagger 2.0, with `x-ms-summary` / `x-ms-visibility`).

Request bodies are the same pydantic models the routes validate with, converted to 2.0's schema
dialect; a test checks that every route of function_app.py is described and every described route
exists.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, NamedTuple

import azure.durable_functions as df
import azure.functions as func
from pydantic import BaseModel

from shared.connection import Connection
from shared.doctor import Check
from shared.requests import DrillRequest, RestoreRequest, RotateRequest, SwitchoverRequest, VerifyRequest
from shared.spec import ClusterSpec
from shared.status import ClusterStatus
from triggers.operations import Decision
from triggers.responses import json_response

bp = df.Blueprint()

KEEP = {"type", "format", "description", "default", "enum", "items", "properties", "required", "maximum",
        "minimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "maxProperties", "minProperties",
        "additionalProperties", "$ref", "uniqueItems", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}


def words(name: str) -> str:
    """`destinationPath` → `Destination path`: what Logic Apps' designer shows for a field."""
    spaced = re.sub(r"(?<=[a-z0-9])([A-Z])", r" \1", name).replace("_", " ")
    return spaced[:1].upper() + spaced[1:].lower()


def to_swagger(schema: Any, name: str | None = None) -> Any:
    """JSON Schema 2020-12 as pydantic writes it → the subset OpenAPI 2.0 allows."""
    if isinstance(schema, list):
        return [to_swagger(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = dict(schema)
    if "$ref" in schema:
        return {"$ref": schema["$ref"].replace("#/$defs/", "#/definitions/")}
    if "anyOf" in schema:
        options = [o for o in schema.pop("anyOf") if o != {"type": "null"}]
        chosen = dict(options[0]) if len(options) == 1 else {}
        if "$ref" in chosen:
            return {"$ref": chosen["$ref"].replace("#/$defs/", "#/definitions/")}
        schema = {**chosen, **{k: v for k, v in schema.items() if k in ("default", "description")}}
        if schema.get("default") is None:
            schema.pop("default", None)
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    if "patternProperties" in schema:
        (values,) = schema.pop("patternProperties").values()
        schema["additionalProperties"] = values
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in KEEP:
            continue
        if key == "properties":
            out[key] = {prop: {**to_swagger(sub, prop), **_label(prop, sub)} for prop, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = to_swagger(value)
        elif key == "exclusiveMinimum" and not isinstance(value, bool):
            out.update(minimum=value, exclusiveMinimum=True)
        else:
            out[key] = value
    return out


def _label(prop: str, sub: Any) -> dict[str, str]:
    return {} if isinstance(sub, dict) and "$ref" in sub else {"x-ms-summary": words(prop)}


def model_schema(model: type[BaseModel], definitions: dict[str, Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    for name, sub in raw.pop("$defs", {}).items():
        definitions[name] = to_swagger(sub)
    definitions[model.__name__] = to_swagger(raw)
    return {"$ref": f"#/definitions/{model.__name__}"}


def with_callback(ref: dict[str, Any], definitions: dict[str, Any], name: str) -> dict[str, Any]:
    """A request model plus the `callbackUrl` every operation request may carry."""
    target = definitions[ref["$ref"].rsplit("/", 1)[1]]
    definitions[name] = {**target, "properties": {**target.get("properties", {}), "callbackUrl": CALLBACK}}
    return {"$ref": f"#/definitions/{name}"}


CALLBACK = {"type": "string", "format": "uri", "maxLength": 2048, "x-ms-summary": "Callback URL",
            "x-ms-visibility": "advanced",
            "description": "the run POSTs its report here when it ends (kept out of history and reports)"}
ERROR = {"type": "object", "required": ["code", "message"], "properties": {
    "code": {"type": "string", "x-ms-summary": "Code"}, "message": {"type": "string", "x-ms-summary": "Message"},
    "field": {"type": "string", "x-ms-summary": "Field", "description": "the field to blame, when one is"},
    "operationId": {"type": "string"}, "statusQueryGetUri": {"type": "string"},
}}
REPORT = {"type": "object", "required": ["operationId", "runbook", "status", "steps"], "properties": {
    "operationId": {"type": "string", "x-ms-summary": "Operation id"},
    "runbook": {"type": "string", "x-ms-summary": "Runbook"},
    "cluster": {"type": "object", "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}}},
    "status": {"type": "string", "enum": ["running", "succeeded", "failed", "canceled"], "x-ms-summary": "Status"},
    "startedAt": {"type": "string", "format": "date-time"},
    "endedAt": {"type": "string", "format": "date-time", "x-nullable": True},
    "durationSeconds": {"type": "number", "x-nullable": True},
    "error": {"type": "string", "x-nullable": True, "x-ms-summary": "Error"},
    "steps": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "outcome": {"type": "string"}, "startedAt": {"type": "string"},
        "durationSeconds": {"type": "number"}, "detail": {"type": "string"}, "data": {"type": "object"}}}},
    "result": {"type": "object", "x-ms-summary": "Result"},
    "location": {"type": "object"},
}}
ACCEPTED = {"type": "object", "required": ["id", "statusQueryGetUri"], "properties": {
    "id": {"type": "string", "x-ms-summary": "Operation id"},
    "runbook": {"type": "string"},
    "cluster": {"type": "object", "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}}},
    "statusQueryGetUri": {"type": "string", "x-ms-summary": "Status URL"},
    "duplicate": {"type": "boolean"}, "playbook": {"type": "string"}, "resolved": {"type": "boolean"},
    "cancel": {"type": "string"}, "decision": {"type": "string"}, "action": {"type": "string"},
}}
RUNNING = {"type": "object", "properties": {
    "id": {"type": "string"}, "runtimeStatus": {"type": "string"}, "customStatus": {"type": "object"},
    "createdTime": {"type": "string"}}}
FAILED = {"type": "object", "required": ["code", "message"], "properties": {
    "code": {"type": "string", "enum": ["OperationFailed", "OperationTerminated", "OperationCanceled"]},
    "message": {"type": "string"}, "report": {"$ref": "#/definitions/Report"}}}
AZURE_MONITOR_ALERT = {"type": "object", "required": ["schemaId", "data"], "properties": {
    "schemaId": {"type": "string", "enum": ["azureMonitorCommonAlertSchema"]},
    "data": {"type": "object", "required": ["essentials"], "properties": {
        "essentials": {"type": "object", "required": [
            "alertId", "alertRule", "severity", "signalType", "monitorCondition", "monitoringService", "firedDateTime",
        ], "properties": {
            "alertId": {"type": "string", "minLength": 1, "maxLength": 300},
            "alertRule": {"type": "string", "minLength": 1, "maxLength": 200},
            "severity": {"type": "string", "enum": ["Sev0", "Sev1", "Sev2", "Sev3", "Sev4"]},
            "signalType": {"type": "string", "enum": ["Metric", "Log", "Activity Log"]},
            "monitorCondition": {"type": "string", "enum": ["Fired", "Resolved"]},
            "monitoringService": {"type": "string", "minLength": 1, "maxLength": 60},
            "alertTargetIDs": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 300}},
            "configurationItems": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 300}},
            "firedDateTime": {"type": "string", "format": "date-time"},
            "resolvedDateTime": {"type": "string", "format": "date-time"},
        }},
        "alertContext": {"type": "object", "properties": {
            "labels": {"type": "object", "maxProperties": 20,
                       "additionalProperties": {"type": "string", "maxLength": 100}},
            "expression": {"type": "string", "maxLength": 1000},
            "expressionValue": {"type": "string", "maxLength": 100},
        }},
    }},
}}
ANSWERED = {"type": "object", "description": "one alert's answer: its run (id null when a resolve found none "
            "running), whether it was a copy, its playbook and cluster", "properties": {
                **ACCEPTED["properties"], "id": {"type": "string", "x-nullable": True},
                "message": {"type": "string"}}}
ALERT_ACCEPTED = {"type": "object", "properties": {
    **ANSWERED["properties"],
    "alerts": {"type": "array", "items": ANSWERED,
               "description": "Alertmanager's group: one answer per alert, in the group's order"}}}
ALERTMANAGER_WEBHOOK = {"type": "object", "required": ["version", "alerts"], "properties": {
    "version": {"type": "string", "enum": ["4"]},
    "status": {"type": "string", "enum": ["firing", "resolved"]},
    "receiver": {"type": "string"}, "groupKey": {"type": "string"}, "externalURL": {"type": "string"},
    "alerts": {"type": "array", "minItems": 1, "maxItems": 100, "items": {
        "type": "object", "required": ["status", "labels", "startsAt", "fingerprint"], "properties": {
            "status": {"type": "string", "enum": ["firing", "resolved"]},
            "labels": {"type": "object", "required": ["alertname"],
                       "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "startsAt": {"type": "string", "format": "date-time"},
            "endsAt": {"type": "string", "format": "date-time",
                       "description": "required when resolved (Go's zero time while firing)"},
            "generatorURL": {"type": "string"},
            "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{1,64}$"},
        }}},
}}
# OpenAPI 2.0 has no oneOf: the body is either shape, each described in full beside it
ALERT = {"type": "object", "description": "either Azure Monitor's common alert schema (AzureMonitorAlert: "
         "schemaId, data) or Alertmanager's webhook (AlertmanagerWebhook: version \"4\", alerts)",
         "properties": {**AZURE_MONITOR_ALERT["properties"], **ALERTMANAGER_WEBHOOK["properties"]},
         "x-one-of": [{"$ref": "#/definitions/AzureMonitorAlert"}, {"$ref": "#/definitions/AlertmanagerWebhook"}]}
SUBSCRIPTION = {"type": "object", "required": ["operation", "callbackUrl"], "properties": {
    "operation": {"type": "string", "enum": ["deploy", "teardown", "verifyBackups", "restore", "failoverDrill",
                                             "switchover", "update", "rotateCredentials"],
                  "x-ms-summary": "Operation"},
    "cluster": {"type": "string", "maxLength": 50, "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$",
                "x-ms-summary": "Cluster", "description": "the cluster to act on (not for deploy)"},
    "namespace": {"type": "string", "maxLength": 63, "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$",
                  "x-ms-summary": "Namespace"},
    "request": {"type": "object", "x-ms-summary": "Request",
                "description": "what the operation's own route takes (deploy: a ClusterSpec)"},
    "callbackUrl": {**CALLBACK, "x-ms-notification-url": True, "x-ms-visibility": "internal"},
}}


def path_param(name: str, summary: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "type": "string", "maxLength": 200, "x-ms-summary": summary}


NAMESPACE = {"name": "namespace", "in": "query", "required": False, "type": "string", "maxLength": 63,
             "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$", "x-ms-summary": "Namespace", "x-ms-visibility": "advanced"}
CLUSTER = path_param("name", "Cluster")
DRY_RUN = {"name": "dryRun", "in": "query", "type": "boolean", "required": False, "x-ms-summary": "Dry run",
           "x-ms-visibility": "advanced", "description": "answer with every object and Azure call, touching nothing"}
DELETE_BACKUPS = {"name": "deleteBackups", "in": "query", "type": "boolean", "required": False,
                  "x-ms-summary": "Delete backups", "x-ms-visibility": "advanced"}
OPERATION = path_param("id", "Operation id")


def body(ref: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": "body", "in": "body", "required": required, "schema": ref}


def alert_answers() -> dict[str, Any]:
    """An Azure Monitor alert is answered as any start is (Location and all); an Alertmanager group with one
    answer per alert under `alerts`, and no Location (a group has no one operation)."""
    described = answers(202, 400, 413, 503)
    described["202"] = {**described["202"], "schema": {"$ref": "#/definitions/AlertAccepted"},
                        "description": "accepted: one alert, follow Location; a group, follow each alert's "
                                       "statusQueryGetUri"}
    return described


def answers(*codes: int, ok: dict[str, Any] | None = None) -> dict[str, Any]:
    described: dict[str, Any] = {}
    for code in codes:
        if code == 202:
            described["202"] = {"description": "accepted: follow Location until it stops answering 202",
                                "schema": {"$ref": "#/definitions/Accepted"},
                                "headers": {"Location": {"type": "string"}, "Retry-After": {"type": "integer"}}}
        elif code == 200:
            described["200"] = {"description": "done", "schema": ok or {"$ref": "#/definitions/Report"}}
        elif code == 201:
            described["201"] = {"description": "subscribed", "schema": {"$ref": "#/definitions/Accepted"},
                                "headers": {"Location": {"type": "string"}}}
        elif code == 422:
            described["422"] = {"description": "the run failed, was terminated or canceled",
                                "schema": {"$ref": "#/definitions/OperationFailed"}}
        else:
            described[str(code)] = {"description": ERROR_TEXT[code], "schema": {"$ref": "#/definitions/Error"}}
    described["401"] = {"description": "no valid function key", "schema": {"$ref": "#/definitions/Error"}}
    return described


ERROR_TEXT = {400: "invalid request: `field` names what is wrong", 404: "no such cluster or operation",
              405: "method not allowed", 409: "busy, or not in a state that allows it", 413: "body too large",
              503: "the durable runtime did not start the run"}
LONG_RUNNING = {"x-ms-long-running-operation": True,
                "x-ms-long-running-operation-options": {"final-state-via": "location"}}


def operation(op_id: str, summary: str, description: str, parameters: list[dict[str, Any]],
              responses: dict[str, Any], visibility: str = "important", **extra: Any) -> dict[str, Any]:
    return {"operationId": op_id, "summary": summary, "description": description, "x-ms-visibility": visibility,
            "parameters": parameters, "responses": responses, **extra}


class Schemas(NamedTuple):
    """The request bodies and answers the paths refer to, each made once into `definitions`."""

    spec: dict[str, Any]
    verify: dict[str, Any]
    restore: dict[str, Any]
    drill: dict[str, Any]
    switchover: dict[str, Any]
    rotate: dict[str, Any]
    decision: dict[str, Any]
    diagnosis: dict[str, Any]


def schemas(definitions: dict[str, Any]) -> Schemas:
    """pgha's models as Swagger definitions, with what the API adds beside them."""
    spec = with_callback(model_schema(ClusterSpec, definitions), definitions, "ClusterSpecRequest")
    verify = with_callback(model_schema(VerifyRequest, definitions), definitions, "VerifyRequestBody")
    restore = with_callback(model_schema(RestoreRequest, definitions), definitions, "RestoreRequestBody")
    definitions["RestoreRequestBody"]["properties"]["sourceServerName"] = {
        "type": "string", "maxLength": 50, "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$", "x-ms-visibility": "advanced",
        "x-ms-summary": "Source server name", "description": "a torn-down cluster's kept backups to restore from"}
    drill = with_callback(model_schema(DrillRequest, definitions), definitions, "DrillRequestBody")
    switchover = with_callback(model_schema(SwitchoverRequest, definitions), definitions, "SwitchoverRequestBody")
    definitions["ClusterPatch"] = {
        **{k: v for k, v in definitions["ClusterSpecRequest"].items() if k != "required"},
        "description": "a partial ClusterSpec, merged into the stored one (JSON merge patch: null puts a field "
                       "back to its default); name and namespace cannot change"}
    rotate = with_callback(model_schema(RotateRequest, definitions), definitions, "RotateRequestBody")
    decision = model_schema(Decision, definitions)
    model_schema(ClusterStatus, definitions)
    connection = model_schema(Connection, definitions)
    definitions["ClusterView"] = {  # the status, with what pgha adds beside it
        **definitions["ClusterStatus"], "properties": {
            **definitions["ClusterStatus"]["properties"], "healthy": {"type": "boolean"},
            "spec": {"$ref": "#/definitions/ClusterSpec"}, "drift": {"type": "array", "items": {"type": "object"}},
            "connection": connection, "connectionError": {"type": "string"},
            "operation": {"type": "object", "description": "the run holding the cluster, if any"}}}
    diagnosis = {"type": "object", "properties": {
        "platform": {"type": "string"}, "verdict": {"type": "string", "enum": ["PASS", "WARN", "FAIL"]},
        "checks": {"type": "array", "items": model_schema(Check, definitions)}}}
    teardown = {"type": "object", "properties": {
        "deleteBackups": {"type": "boolean", "default": False, "x-ms-summary": "Delete backups"},
        "callbackUrl": CALLBACK}}
    definitions.update(Error=ERROR, Report=REPORT, Accepted=ACCEPTED, Running=RUNNING, OperationFailed=FAILED,
                       Alert=ALERT, AzureMonitorAlert=AZURE_MONITOR_ALERT, AlertmanagerWebhook=ALERTMANAGER_WEBHOOK,
                       AlertAccepted=ALERT_ACCEPTED,
                       Subscription=SUBSCRIPTION, TeardownRequest=teardown)
    return Schemas(spec, verify, restore, drill, switchover, rotate, decision, diagnosis)


STARTED = (202, 400, 404, 409, 413, 503)  # what a route that starts a run answers


def cluster_paths(bodies: Schemas) -> dict[str, Any]:
    """The routes that start a runbook on a cluster, or read one."""
    spec, verify, restore, drill, switchover, rotate = (bodies.spec, bodies.verify, bodies.restore, bodies.drill,
                                                        bodies.switchover, bodies.rotate)
    return {
        "/clusters": {"post": operation(
            "DeployCluster", "Deploy a cluster", "deploy_cluster: a CNPG-style ClusterSpec made real and verified",
            [NAMESPACE, DRY_RUN, body(spec, required=True)],
            {**answers(202, 400, 409, 413, 503), "200": {"description": "dryRun: what the run would apply",
                                                         "schema": {"type": "object"}}}, **LONG_RUNNING)},
        "/clusters/{name}": {
            "get": operation("GetCluster", "Get a cluster's status", "status in CNPG's vocabulary, and how to connect",
                             [CLUSTER, NAMESPACE], answers(200, 400, 404, ok={"$ref": "#/definitions/ClusterView"})),
            "patch": operation(
                "UpdateCluster", "Change a running cluster", "update_cluster: the change planned (online, rolling, "
                "scale, storage, major), gated, rolled in CNPG's order with measured RTO and RPO",
                [CLUSTER, NAMESPACE, {**DRY_RUN, "description": "answer the change plan, touching nothing"},
                 body({"$ref": "#/definitions/ClusterPatch"}, required=True)],
                {**answers(*STARTED), "200": {"description": "dryRun, or nothing to change: the change plan",
                                              "schema": {"type": "object"}}}, **LONG_RUNNING),
            "delete": operation(
                "TeardownCluster", "Tear down a cluster", "teardown_cluster; backups are kept unless deleteBackups",
                [CLUSTER, NAMESPACE, DELETE_BACKUPS, body({"$ref": "#/definitions/TeardownRequest"})],
                answers(*STARTED), **LONG_RUNNING),
        },
        "/clusters/{name}/backups": {"post": operation(
            "VerifyBackups", "Take and verify a backup", "verify_backups, optionally with a restore test",
            [CLUSTER, NAMESPACE, body(verify)], answers(*STARTED), **LONG_RUNNING)},
        "/clusters/{name}/restores": {"post": operation(
            "RestoreCluster", "Restore into a new cluster", "restore_cluster: a new cluster from the backups, checked",
            [CLUSTER, NAMESPACE, body(restore)], answers(*STARTED), **LONG_RUNNING)},
        "/clusters/{name}/drills/failover": {"post": operation(
            "FailoverDrill", "Rehearse a failover", "failover_drill with measured RTO and RPO",
            [CLUSTER, NAMESPACE, body(drill)], answers(*STARTED), **LONG_RUNNING)},
        "/clusters/{name}/switchover": {"post": operation(
            "Switchover", "Switch the primary over", "switchover_cluster: a planned switchover to an in-sync "
            "standby (kubectl cnpg promote), with measured RTO and RPO",
            [CLUSTER, NAMESPACE, body(switchover)], answers(*STARTED), **LONG_RUNNING)},
        "/clusters/{name}/credentials/rotate": {"post": operation(
            "RotateCredentials", "Rotate the app owner's password", "rotate_credentials: a new password on every "
            "cluster that uses the app secret, proven (the new one logs in, the old one is refused)",
            [CLUSTER, NAMESPACE, body(rotate)], answers(*STARTED), **LONG_RUNNING)},
    }


def operation_paths(bodies: Schemas) -> dict[str, Any]:
    """Alerts in, and what a caller does with a run it started: follow it, decide for it, cancel it."""
    decision = bodies.decision
    return {
        "/alerts": {"post": operation(
            "ReceiveAlert", "Receive an alert", "Azure Monitor's common alert schema (one run per alertId and "
            "condition) or Alertmanager's webhook (each alert of the group on its own: one run per fingerprint, "
            "startsAt and status; the 202 lists them under alerts)",
            [body({"$ref": "#/definitions/Alert"}, required=True)], alert_answers(), visibility="advanced")},
        "/operations/{id}": {"get": operation(
            "GetOperation", "Get an operation", "202 while running, 200 with the report, 422 when it failed",
            [OPERATION], {**answers(200, 400, 404, 422), "202": {
                "description": "running", "schema": {"$ref": "#/definitions/Running"},
                "headers": {"Location": {"type": "string"}, "Retry-After": {"type": "integer"}}}})},
        "/operations/{id}/report": {"get": operation(
            "GetReport", "Get a run's report", "the stored report; ?format=markdown, or ?format=html (a page with "
            "its charts, opened with ?code=) for people",
            [OPERATION, {"name": "format", "in": "query", "type": "string", "enum": ["json", "markdown", "html"],
                         "required": False, "x-ms-summary": "Format"}], answers(200, 400, 404),
            produces=["application/json", "text/markdown", "text/html"])},
        "/operations/{id}/approve": {"post": operation(
            "ApproveOperation", "Approve the pending action", "the run acts; refused unless it waits for a decision",
            [OPERATION, body(decision)], answers(202, 400, 404, 409, 413))},
        "/operations/{id}/reject": {"post": operation(
            "RejectOperation", "Reject the pending action", "the run ends without acting",
            [OPERATION, body(decision)], answers(202, 400, 404, 409, 413))},
        "/operations/{id}/cancel": {"post": operation(
            "CancelOperation", "Cancel an operation", "cooperative: the run stops at its next wait and cleans up",
            [OPERATION], answers(202, 400, 404, 409))},
        "/subscriptions": {
            "post": operation(
                "Subscribe", "Run an operation and call back", "HTTP Webhook: the report is POSTed to callbackUrl",
                [body({"$ref": "#/definitions/Subscription"}, required=True)],
                answers(201, 400, 404, 409, 413, 503), visibility="advanced"),
            "delete": operation(
                "UnsubscribeByCallback", "Cancel by callback URL", "what a webhook's unsubscribe can send",
                [body({"type": "object", "required": ["callbackUrl"], "properties": {"callbackUrl": CALLBACK}},
                      required=True)],
                {**answers(202, 400, 404, 413), "200": {"description": "the run had already ended"}},
                visibility="internal"),
        },
        "/subscriptions/{id}": {"delete": operation(
            "Unsubscribe", "Cancel a subscribed operation", "cooperative cancel; 200 when it has already ended",
            [OPERATION], {**answers(202, 400, 404), "200": {"description": "the run had already ended"}},
            visibility="internal")},
    }


def service_paths(bodies: Schemas) -> dict[str, Any]:
    """The app itself: its checks, its health, its pages, this document."""
    spec, diagnosis = bodies.spec, bodies.diagnosis
    return {
        "/doctor": {
            "get": operation("Doctor", "Check the environment", "read-only: every check pgha makes before a first run, "
                             "for a cluster of default spec", [NAMESPACE, DELETE_BACKUPS],
                             answers(200, 400, 503, ok=diagnosis)),
            "post": operation("DoctorForSpec", "Check the environment for a spec", "what the deploy's pre-flight of "
                              "this ClusterSpec would find", [NAMESPACE, DELETE_BACKUPS, body(spec, required=True)],
                              answers(200, 400, 413, 503, ok=diagnosis), visibility="advanced"),
        },
        "/health": {"get": operation("Health", "Health", "anonymous: the app runs and its settings read", [],
                                     {"200": {"description": "ok"}, "503": {"description": "misconfigured"}},
                                     visibility="internal", security=[])},
        "/dashboard": {"get": operation(
            "Dashboard", "The fleet page", "HTML for a browser (open it with ?code=): every cluster, what is failing "
            "or stale first, each run linked to its report page", [],
            {"200": {"description": "the page", "schema": {"type": "string"}}, "503": {"description": "unavailable"}},
            produces=["text/html"], visibility="advanced")},
        "/openapi.json": {"get": operation("OpenApi", "This document", "OpenAPI 2.0", [],
                                           answers(200, ok={"type": "object"}), visibility="internal")},
    }


@cache
def document() -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    bodies = schemas(definitions)
    paths = {**cluster_paths(bodies), **operation_paths(bodies), **service_paths(bodies)}
    return {
        "swagger": "2.0",
        "info": {"title": "pgha", "version": "1.0", "description": "Highly available PostgreSQL on AKS, "
                 "run by durable runbooks: deploy, backups, restores, failover drills, switchovers, alert response."},
        "basePath": "/api",
        "schemes": ["https", "http"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {
            "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
            "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
        },
        "security": [{"functionKey": []}, {"functionKeyQuery": []}],
        "paths": paths,
        "definitions": definitions,
    }


@bp.route(route="openapi.json", methods=["GET"])
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    """This API as OpenAPI 2.0, with the requesting host, for a Logic Apps custom connector."""
    from urllib.parse import urlsplit

    parts = urlsplit(req.url)
    return json_response(200, {**document(), "host": parts.netloc, "schemes": [parts.scheme]})
