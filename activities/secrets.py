"""The app user's secret: generated here, stored by the platform, never returned."""

from __future__ import annotations

import azure.durable_functions as df

from activities import platform, typed
from shared.outcome import Outcome
from shared.payloads import OnRun
from shared.spec import ClusterSpec

bp = df.Blueprint()


@bp.activity_trigger(input_name="secret")
@typed
def ensure_app_secret(secret: OnRun) -> Outcome:
    """Create the bootstrap secret with a random password unless it exists (then it is kept as is)."""
    return platform().ensure_app_secret(secret.spec, secret.operation_id)


@bp.activity_trigger(input_name="spec")
@typed
def apply_owner_secret(spec: ClusterSpec) -> Outcome:
    """A restore with a secret of its own: the recovered owner's password is set from it."""
    return platform().apply_owner_secret(spec)


@bp.activity_trigger(input_name="spec")
@typed
def delete_app_secret(spec: ClusterSpec) -> Outcome:
    return platform().delete_app_secret(spec)
