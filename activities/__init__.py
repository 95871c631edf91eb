"""Activities: one module per concern, each activity one idempotent step of the runbook.

Each reads its payload as the model its parameter names (`typed`), once, and answers plain JSON (an
Outcome, a status, a spec); secrets are made and read here and never returned.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from shared.backups import Inventory, read_inventory
from shared.model import wire
from shared.platform import Platform
from shared.platforms import platform_for
from shared.spec import ClusterSpec


def platform() -> Platform:
    return platform_for()


def stored_inventory(spec: ClusterSpec) -> Inventory:
    """The cluster's object store as barman-cloud wrote it (LookupError when its container is missing)."""
    return read_inventory(platform().backup_container(spec), spec.backup.container, spec.server_name)


def typed(step: Callable[[Any], Any]) -> Callable[..., Any]:
    """The activity with its payload read as its parameter's model and its answer dumped to JSON.

    The Functions host and the devhost call an activity with its binding's name as keyword; the signature
    they inspect is the step's own (functools.wraps)."""
    (name, kind), *_ = ((n, t) for n, t in typing.get_type_hints(step).items() if n != "return")

    @functools.wraps(step)
    def activity(**given: Any) -> Any:
        payload = given[name]
        if kind is ClusterSpec and isinstance(payload, dict) and "spec" in payload:
            payload = payload["spec"]  # a spec the runbooks once sent wrapped as {"spec": ...}
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            payload = kind.model_validate(payload)
        return wire(step(payload))

    return activity
