"""Runbook: rotate the application owner's password — a new one made inside an activity, set on every cluster
that uses the app secret, written to the secret, then proven: a login with it works (on AKS once CNPG's
instance manager has set it from the secret) and one with the old password is refused. Sessions already open
go on. A rotation that cannot prove the new password puts the old one back."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from orchestrations.runbook import Runbook, Step, StepFailed
from orchestrations.steps import read_spec
from shared.credentials import Which
from shared.payloads import Login, OwnerPassword, ReleaseLock, Revert, RotationCheck
from shared.runs import RotateInput
from shared.spec import ClusterRef, ClusterSpec

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def rotate_credentials(context: df.DurableOrchestrationContext) -> Step:
    run = Runbook(context, "rotate_credentials", RotateInput)
    error: Exception | None = None
    result: dict[str, Any] = {}
    specs: list[ClusterSpec] = []
    locked: list[str] = []  # the other clusters' locks, taken by the pre-flight
    staged = committed = proven = False
    try:
        first = yield from read_spec(run, "read cluster spec")
        if first is None:
            raise StepFailed("read cluster spec", "the cluster does not exist")
        checked = yield from run.step("pre-flight", "rotation_preflight", RotationCheck(
            spec=first, operation_id=run.input.operation_id), retry=False)
        result.update(secret=first.bootstrap.secret_name, clusters=checked.data["clusters"])
        locked = checked.data["clusters"][1:]
        specs.append(first)
        for name in checked.data["clusters"][1:]:  # the others that use the secret
            spec = yield from read_spec(run, f"read {name}", ClusterRef(namespace=run.input.namespace, name=name))
            if spec is None:
                raise StepFailed(f"read {name}", f"cluster {name} is gone")
            specs.append(spec)
        staged = True  # from here, a failure puts the old password back
        yield from run.step("stage new password", "stage_app_password", first)
        yield from set_owner_passwords(run, specs, "pending")
        committed = True  # from here the secret may hold the new password (a redelivered commit is a no-op)
        yield from run.step("commit new password", "commit_app_password", first)
        for spec in specs:  # on AKS, CNPG sets it from the secret a moment later: bounded
            yield from run.wait_until(f"new password works on {spec.name}", "try_login",
                                      Login(spec=spec, which="password"), lambda answer: answer["data"]["accepted"],
                                      lambda answer: answer["detail"], run.options.drill_timeout_seconds)
        proven = True
        for spec in specs:
            old = yield from run.step(f"old password refused on {spec.name}", "try_login",
                                      Login(spec=spec, which="previous"))
            if not old.data.get("passwordRefused"):
                raise StepFailed(f"old password refused on {spec.name}",
                                 f"the old password is not refused: {old.detail}")
        yield from run.step("forget old password", "forget_previous_password", first)
    except Exception as err:
        error = err
    if staged and not proven:
        result["reverted"] = yield from revert(run, specs, committed)
    for name in locked:
        try:
            yield from run.step(f"release lock on {name}", "release_lock", ReleaseLock(
                namespace=run.input.namespace, name=name, operation_id=run.input.operation_id))
        except StepFailed as failed:
            error = error or failed
    report = yield from run.finish(error, result)
    if error is not None:
        raise StepFailed("rotate_credentials", report["error"])
    return report


def set_owner_passwords(run: Runbook[RotateInput], specs: list[ClusterSpec], which: Which) -> Step:
    for spec in specs:
        yield from run.step(f"set password on {spec.name}", "set_owner_password", OwnerPassword(spec=spec, which=which))


def revert(run: Runbook[RotateInput], specs: list[ClusterSpec], committed: bool) -> Step:
    """The secret's previous password back in use and set on every cluster again: the applications keep
    working with what they read. Whether it worked, for the report."""
    run.stop_listening()
    try:
        yield from run.step("restore previous password", "revert_app_password",
                            Revert(spec=specs[0], committed=committed))
        yield from set_owner_passwords(run, specs, "password")
    except StepFailed:
        return False  # recorded in the report; the run fails with its first error
    return True
