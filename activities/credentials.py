"""Credential rotation: its pre-flight, the app secret's keys moved step by step, the owner's password set from
one of them, and a login tried with one. No password leaves these activities; what they answer is which key
and whether a login was accepted."""

from __future__ import annotations

import azure.durable_functions as df

from activities import platform, typed
from shared import locks
from shared.credentials import refused_for_password
from shared.outcome import Outcome, done
from shared.payloads import Login, OwnerPassword, Revert, RotationCheck
from shared.platform import PreflightFailed
from shared.settings import Settings
from shared.spec import ClusterSpec

bp = df.Blueprint()


@bp.activity_trigger(input_name="check")
@typed
def rotation_preflight(check: RotationCheck) -> Outcome:
    """Every cluster of the namespace that uses the app secret (a kept restore's too): a password set on some
    would leave the others' applications reading one their role refuses. Refused, touching nothing, unless each
    has a primary to set it on; the others' locks are taken for this run (one busy refuses it), so no drill,
    update or restore starts on them mid-rotation. The run releases them at its end."""
    spec, problems = check.spec, []
    secret = spec.bootstrap.secret_name
    others = sharing(spec)
    for name in [spec.name, *others]:
        status = platform().cluster_status(spec.namespace, name)
        if status.current_primary is None:
            problems.append(f"{name} has no primary ({status.phase})")
    taken, busy = ([], []) if problems else take_locks(spec.namespace, others, check.operation_id)
    problems += busy
    if problems:
        connection = Settings.from_env().storage_connection
        for name in taken:
            locks.release(connection, spec.namespace, name, check.operation_id)
        raise PreflightFailed("rotation refused: " + "; ".join(problems))
    clusters = [spec.name, *others]
    return done(f"secret {secret} is used by {', '.join(clusters)}; each has a primary", clusters=clusters)


def sharing(spec: ClusterSpec) -> list[str]:
    """The other clusters of the namespace that use this cluster's app secret."""
    return sorted(s.name for s in platform().list_clusters() if s.namespace == spec.namespace
                  and s.bootstrap.secret_name == spec.bootstrap.secret_name and s.name != spec.name)


@bp.activity_trigger(input_name="spec")
@typed
def clusters_sharing_secret(spec: ClusterSpec) -> Outcome:
    others = sharing(spec)
    return done(f"secret {spec.bootstrap.secret_name} is used by {', '.join([spec.name, *others])}",
                clusters=[spec.name, *others])


def take_locks(namespace: str, names: list[str], operation_id: str) -> tuple[list[str], list[str]]:
    """Each cluster's lock for this run (already ours after a redelivery); those taken, and the busy ones."""
    connection = Settings.from_env().storage_connection
    taken: list[str] = []
    busy: list[str] = []
    try:
        for name in names:
            if locks.try_acquire(connection, namespace, name, operation_id, "rotate_credentials"):
                taken.append(name)
                continue
            holder = locks.holder(connection, namespace, name)
            if holder is not None and holder.operation_id == operation_id:
                taken.append(name)
            else:
                busy.append(f"{name} is busy with {holder.runbook} {holder.operation_id}" if holder else
                            f"{name}'s lock changed hands while it was taken: try again")
    except Exception:  # storage failed part-way: what was taken is given back before the step fails
        for name in taken:
            locks.release(connection, namespace, name, operation_id)
        raise
    return taken, busy


@bp.activity_trigger(input_name="spec")
@typed
def stage_app_password(spec: ClusterSpec) -> Outcome:
    return platform().stage_app_password(spec)


@bp.activity_trigger(input_name="spec")
@typed
def commit_app_password(spec: ClusterSpec) -> Outcome:
    return platform().commit_app_password(spec)


@bp.activity_trigger(input_name="request")
@typed
def revert_app_password(request: Revert) -> Outcome:
    return platform().revert_app_password(request.spec, request.committed)


@bp.activity_trigger(input_name="spec")
@typed
def forget_previous_password(spec: ClusterSpec) -> Outcome:
    return platform().forget_previous_password(spec)


@bp.activity_trigger(input_name="request")
@typed
def set_owner_password(request: OwnerPassword) -> Outcome:
    return platform().set_owner_password(request.spec, request.which)


@bp.activity_trigger(input_name="login")
@typed
def try_login(login: Login) -> Outcome:
    """A login as the owner through rw with the secret's `which` password: accepted, or what refused it."""
    spec = login.spec
    said = platform().app_login(spec, login.which)
    if said is None:
        return done(f"{spec.bootstrap.owner} logs in to {spec.name} with the {login.which} password", accepted=True)
    return done(f"{spec.bootstrap.owner} with the {login.which} password on {spec.name}: {said}", accepted=False,
                passwordRefused=refused_for_password(said))
