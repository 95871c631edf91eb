"""Public rw / ro endpoints limited to source ranges."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities import platform, spec_of

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def expose_endpoints(payload: dict[str, Any]) -> dict[str, Any]:
    return platform().expose_endpoints(spec_of(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def remove_endpoints(payload: dict[str, Any]) -> dict[str, Any]:
    return platform().remove_endpoints(payload["namespace"], payload["name"]).to_dict()
