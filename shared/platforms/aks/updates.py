"""Day-2 updates on AKS: what pgha does not drive yet. A change CNPG rolls through the pods (a parameter that
needs a restart, resources, an image, a volume) is refused before anything moves, with the reason; pgha applies
and watches only what needs no restart of its own driving: instances (CNPG adds pods with new serials and
removes the highest-serial standby) and pgha's own settings."""

from __future__ import annotations

from shared.changes import ChangePlan, Verdict

NOT_YET = {
    "online": "verifying a reloaded parameter on every pod",
    "rolling": "watching CNPG's rolling update (primaryUpdateStrategy, the primary last)",
    "storage": "waiting for the PVC resize",
    "major": "CNPG's offline in-place major upgrade and its gates",
}


def weigh_changes(plan: ChangePlan) -> Verdict:
    return Verdict(refused=[f"{c.field}: pgha does not drive {NOT_YET[c.kind]} on AKS yet (a {c.kind} change); "
                            "apply it with kubectl and let CNPG roll it" for c in plan.changes if c.kind in NOT_YET])
