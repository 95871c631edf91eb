"""HTTP: /api/doctor — the environment checked before a first run, read-only, every check in the answer."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from shared.doctor import PROBE, look
from shared.platforms import platform_for
from shared.settings import Settings
from shared.spec import ClusterSpec
from triggers.clusters import namespace_of, spec_of_body
from triggers.responses import ApiError, json_response, query_flag, read_json, unexpected

bp = df.Blueprint()


@bp.route(route="doctor", methods=["GET", "POST"])
def doctor(req: func.HttpRequest) -> func.HttpResponse:
    """GET checks for a cluster of default spec in ?namespace=; POST for the ClusterSpec in the body (what its
    deploy's pre-flight would find). ?deleteBackups=true checks blob delete as a hard requirement. 200 with
    every check and the verdict (FAIL when any check failed); 400 names a bad field."""
    try:
        spec = spec_of(req)
        kind = Settings.from_env().platform
        return json_response(200, look(kind, platform_for, spec, query_flag(req, "deleteBackups")).dump())
    except ApiError as err:
        return err.response()
    except Exception as err:  # the doctor itself failed (its checks catch their own): a 503, one error shape
        return unexpected(err)


def spec_of(req: func.HttpRequest) -> ClusterSpec:
    if req.method == "GET":
        return ClusterSpec(name=PROBE, namespace=namespace_of(req))
    body = read_json(req, required=True)
    if isinstance(body, dict) and "namespace" not in body:
        body["namespace"] = namespace_of(req)
    return spec_of_body(body)
