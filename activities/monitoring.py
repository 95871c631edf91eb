"""Prometheus monitoring: PodMonitors on AKS, and a real scrape to prove metrics flow."""

from __future__ import annotations

import azure.durable_functions as df

from activities import platform, typed
from shared.outcome import Outcome
from shared.spec import ClusterSpec

bp = df.Blueprint()


@bp.activity_trigger(input_name="spec")
@typed
def configure_monitoring(spec: ClusterSpec) -> Outcome:
    return platform().configure_monitoring(spec)


@bp.activity_trigger(input_name="spec")
@typed
def verify_monitoring(spec: ClusterSpec) -> Outcome:
    return platform().verify_monitoring(spec)
