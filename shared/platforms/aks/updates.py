"""Day-2 updates on AKS: what pgha does not drive yet. A change CNPG rolls through the pods (a parameter that
needs a restart, resources, an image, a volume) is refused before anything moves, with the reason; pgha applies
and watches only what needs no restart of its own driving: instances (CNPG adds pods with new serials and
removes the highest-serial standby) and pgha's own settings."""

from __future__ import annotations

from typing import Any

from shared.changes import ChangePlan, Verdict
from shared.status import Drift

NOT_YET = {
    "online": "verifying a reloaded parameter on every pod",
    "rolling": "watching CNPG's rolling update (primaryUpdateStrategy, the primary last)",
    "storage": "waiting for the PVC resize",
    "major": "CNPG's offline in-place major upgrade and its gates",
}


def weigh_changes(plan: ChangePlan) -> Verdict:
    return Verdict(refused=[f"{c.field}: pgha does not drive {NOT_YET[c.kind]} on AKS yet (a {c.kind} change); "
                            "apply it with kubectl and let CNPG roll it" for c in plan.changes if c.kind in NOT_YET])


def drift(rendered: dict[str, Any], live: dict[str, Any]) -> list[Drift]:
    """The Cluster's spec against what pgha applies: only the fields pgha renders, which its server-side apply
    owns (values CNPG's webhook fills in, and fields other managers set, are not pgha's and not drift)."""
    found = []
    for path, held in _leaves(rendered.get("spec") or {}):
        running: Any = live.get("spec") or {}
        for key in path:
            running = running.get(key) if isinstance(running, dict) else None
        if _differs(held, running):
            found.append(Drift(field=".".join(path), held=held, running=running))
    return found


def _differs(held: Any, running: Any) -> bool:
    """Whether the running value differs from pgha's in what pgha sent: inside a list's objects too, a key the
    webhook adds (a plugin's `enabled`, a constraint's defaults) is not pgha's."""
    if isinstance(held, dict):
        return not isinstance(running, dict) or any(_differs(v, running.get(k)) for k, v in held.items())
    if isinstance(held, list):
        return (not isinstance(running, list) or len(held) != len(running)
                or any(_differs(h, r) for h, r in zip(held, running, strict=True)))
    return bool(held != running)


def _leaves(value: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    leaves = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            leaves += _leaves(item, (*path, key))
        else:
            leaves.append(((*path, key), item))
    return leaves
