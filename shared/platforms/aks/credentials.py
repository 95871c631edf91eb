"""The app owner's password rotated on AKS: the Secret's data keys moved step by step with a JSON merge patch
(shared/credentials.py; a key removed is a null); CNPG's instance manager sets the owner's password from the
Secret when it changes (internal/management/controller/instance_controller.go, reconcileUser), so pgha only
writes the Secret and then proves a login works."""

from __future__ import annotations

import base64
from collections.abc import Callable

from shared import credentials
from shared.outcome import Outcome, done, unchanged
from shared.platforms.aks import manifests
from shared.platforms.aks.kube import Kube
from shared.spec import ClusterSpec


def read_keys(kube: Kube, spec: ClusterSpec) -> credentials.Keys:
    secret = kube.get("v1", "Secret", spec.namespace, spec.bootstrap.secret_name)
    if secret is None:
        raise RuntimeError(f"secret {spec.namespace}/{spec.bootstrap.secret_name} does not exist")
    return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}


def move(kube: Kube, spec: ClusterSpec, step: Callable[[credentials.Keys], credentials.Keys | None],
         said: str) -> Outcome:
    name = spec.bootstrap.secret_name
    keys = read_keys(kube, spec)
    changed = step(keys)
    if changed is None:
        return unchanged(f"secret {name}: already {said}", secretName=name)
    data: dict[str, str | None] = {k: base64.b64encode(v.encode()).decode() for k, v in changed.items()}
    data |= {k: None for k in keys if k not in changed}
    # the label on a Secret made before pgha set it, so CNPG notices the change (manifests.app_secret)
    kube.merge_patch("v1", "Secret", spec.namespace, name,
                     {"metadata": {"labels": {manifests.RELOAD_LABEL: "true"}}, "data": data})
    return done(f"secret {name}: {said}", secretName=name)
