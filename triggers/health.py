"""HTTP: GET /api/health — the one anonymous route, for load balancers and uptime probes."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from shared.settings import Settings
from triggers.responses import json_response

bp = df.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """200 while the app runs and its settings read; 503 naming the bad setting otherwise."""
    try:
        settings = Settings.from_env()
    except ValueError as err:
        return json_response(503, {"status": "misconfigured", "code": "InvalidSetting", "message": str(err)})
    return json_response(200, {"status": "ok", "platform": settings.platform})
