"""Prometheus monitoring: PodMonitors on AKS, and a real scrape to prove metrics flow."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities import platform, spec_of

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def configure_monitoring(payload: dict[str, Any]) -> dict[str, Any]:
    return platform().configure_monitoring(spec_of(payload)).to_dict()


@bp.activity_trigger(input_name="payload")
def verify_monitoring(payload: dict[str, Any]) -> dict[str, Any]:
    return platform().verify_monitoring(spec_of(payload)).to_dict()
