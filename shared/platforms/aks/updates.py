"""Day-2 updates on AKS: CNPG rolls every change itself, pgha weighs it first and watches it through.

What CNPG does, and what pgha reads of it (cloudnative-pg v1.30.0):
- A rolling update (internal/controller/cluster_upgrade.go rolloutRequiredInstances): the standbys one at a
  time, most lagged first (the instance list is sorted by lag, primary first, and walked from its end), each
  pod deleted and recreated ("Upgrading cluster", "Restarting instance <pod>, because: <reason>"); the
  primary last — restarted in place ("Primary instance is being restarted in-place") with
  `primaryUpdateMethod: restart`, else a switchover to the first standby of that list; with
  `primaryUpdateStrategy: supervised` CNPG stops at "Waiting for user action" ("User must issue a supervised
  switchover") until a person promotes a standby (`kubectl cnpg promote`) or restarts the primary
  (`kubectl cnpg restart <cluster> <primary>`: the phase "Primary instance is being restarted in-place").
- A parameter is reloaded by each instance manager; one that needs a restart shows as pg_settings'
  pending_restart on the instance until its pod is rolled: pgha reads pg_settings in each pod, as
  `kubectl cnpg psql` does (pods/exec, container `postgres`).
- The pods run `status.image` once rolled; the Cluster is healthy with currentPrimary == targetPrimary.
- A higher major in `imageName` (since 1.26; docs/src/postgres_upgrades.md): "Upgrading Postgres major
  version", every pod deleted, a Job `<cluster>-<serial>-major-upgrade` runs pg_upgrade on the primary's
  volume, the standbys are recloned; `status.pgDataImageInfo.majorVersion` then says the new major
  (pkg/reconciler/majorupgrade/reconciler.go). A failed Job stays until a person sets the old image back,
  which CNPG takes as the rollback (handleRollbackIfNeeded).
- A larger volume is a PVC patch; the PVCs with the ResizingPVC condition are listed in
  `status.resizingPVC` (pkg/reconciler/persistentvolumeclaim/status.go), and the PVC's
  `status.capacity.storage` says when the volume has grown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from shared.changes import ChangePlan, Verdict, in_force, major_of
from shared.platforms.aks.cnpg import MAJOR_UPGRADE_ROLE, pod_ready
from shared.platforms.aks.operator import Operator, minor_label
from shared.spec import ClusterSpec
from shared.status import Drift, InstanceSettings, Rollout

MAJOR_UPGRADE_SINCE = (1, 26)  # offline in-place major upgrades (docs/src/release_notes/old/v1.26.md)
PARAMETER = re.compile(r"^[a-z_][a-z0-9_.]*$")  # what may go into the settings query unquoted
# phases a change leaves the Cluster in until the spec changes again (api/v1/cluster_types.go): no wait outlasts them
NEEDS_A_NEW_SPEC = ("Cluster has incomplete or invalid image catalog", "Invalid cluster definition")
MIB = 1024 * 1024
UNITS = {"": 1 / MIB, "Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": MIB, "k": 1e3 / MIB, "M": 1e6 / MIB, "G": 1e9 / MIB,
         "T": 1e12 / MIB}  # a quantity's suffix, in MiB


def weigh_changes(plan: ChangePlan, operator: Operator) -> Verdict:
    """Every change is CNPG's to roll; a major upgrade only with an operator that does it in place."""
    refused = []
    if plan.of("major") and operator.minor < MAJOR_UPGRADE_SINCE:
        refused.append(f"imageName: {operator.describe()} cannot upgrade PostgreSQL's major version in place "
                       f"(CNPG {minor_label(MAJOR_UPGRADE_SINCE)} and later do, with pg_upgrade): upgrade the "
                       "operator first, or restore a backup into a new cluster of the new major")
    return Verdict(refused=refused, rolled_by="operator")


def expansion_refusal(field: str, storage_class: str, found: dict[str, Any] | None) -> str | None:
    """Why a volume cannot grow: the API server refuses a larger PVC unless its StorageClass sets
    allowVolumeExpansion (storage.k8s.io/v1; AKS's built-in CSI classes do)."""
    if found is None:
        return f"{field}: StorageClass {storage_class} does not exist"
    if found.get("allowVolumeExpansion") is not True:
        return (f"{field}: StorageClass {storage_class} does not allow volume expansion (allowVolumeExpansion): the "
                "API server refuses a larger PVC; restore into a new cluster with bigger volumes instead")
    return None


def settings_query(names: list[str]) -> list[str]:
    """psql in the instance's pod: each asked parameter's value in force (PostgreSQL's own spelling), its
    setting and unit, and every parameter waiting for a restart, as one JSON array (a value may hold `|`;
    pg_settings spells some names in mixed case, TimeZone, which the spec writes in lower case)."""
    asked = ",".join(n for n in names if PARAMETER.match(n))
    return ["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c",
            "SELECT coalesce(json_agg(json_build_array(lower(name), current_setting(name), setting, unit, "
            f"pending_restart) ORDER BY name), '[]') FROM pg_settings WHERE lower(name) = ANY('{{{asked}}}'::text[]) "
            "OR pending_restart"]


def read_settings(instance: str, names: list[str], answer: str) -> InstanceSettings:
    """The settings query's answer as pgha's InstanceSettings; an answer that does not read says so."""
    values: dict[str, str | None] = dict.fromkeys(names)
    base: dict[str, tuple[str, str | None]] = {}
    pending = []
    try:
        rows = json.loads(answer)
        for name, value, setting, unit, waiting in rows:
            if name in values:
                values[name], base[name] = value, (setting, unit or None)
            if waiting:
                pending.append(name)
    except (ValueError, TypeError) as err:
        return InstanceSettings(name=instance, error=f"pg_settings did not read ({err}): {answer[:100]!r}")
    return InstanceSettings(name=instance, values=values, base=base, pending_restart=pending)


def rollout(spec: ClusterSpec, cluster: dict[str, Any], pods: list[dict[str, Any]], pvcs: list[dict[str, Any]],
            settings: list[InstanceSettings], failure: str | None, jobs: Sequence[dict[str, Any]] = ()) -> Rollout:
    """What of the spec CNPG has not yet rolled out, from the Cluster, its pods and volumes and each instance's
    settings: the change is done when nothing waits and the Cluster is healthy."""
    status = cluster.get("status") or {}
    waiting = []
    current, target = status.get("currentPrimary"), status.get("targetPrimary")
    if current != target:
        waiting.append(f"primary {current}, target {target}")
    if len(pods) != spec.instances:
        waiting.append(f"{len(pods)} of {spec.instances} instances")
    # the spec's image, not status.image: until CNPG has reconciled the change, both still say the old one
    image = spec.image_name or status.get("image")
    outdated = []
    for pod in pods:
        name = pod["metadata"]["name"]
        container = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == "postgres"),
                         {})
        running, requests = container.get("image"), (container.get("resources") or {}).get("requests") or {}
        wanted = {"memory": spec.resources.memory, "cpu": spec.resources.cpu} if spec.resources else {}
        if not pod_ready(pod):
            waiting.append(f"{name} not ready")
        elif image and running and running != image:
            waiting.append(f"{name} runs {running}, not {image}")
            outdated.append(name)
        elif container and wanted and _amounts(requests) != _amounts(wanted):  # none asked: nothing to compare
            waiting.append(f"{name} requests {requests or 'nothing'}, not {wanted or 'nothing'}")
            outdated.append(name)
    asked = major_of(spec.image_name)
    upgraded = (status.get("pgDataImageInfo") or {}).get("majorVersion")
    if asked and upgraded and int(upgraded) < asked:
        waiting.append(f"the data directory is PostgreSQL {upgraded}, not yet {asked}")
    waiting += [f"volume {name} resizing" for name in status.get("resizingPVC") or []]
    waiting += [f"volume {name} is {has}, asked {wants}" for name, has, wants in _small_volumes(spec, pvcs)]
    waiting += in_force(spec, settings)
    previous_image = (status.get("pgDataImageInfo") or {}).get("image")
    major_job = major_upgrade_failure(jobs, previous_image)
    failure = failure or major_job
    phase, reason = status.get("phase") or "", status.get("phaseReason") or ""
    if failure is None and phase in NEEDS_A_NEW_SPEC:
        failure = f"{phase}: {reason}" if reason else phase
    return Rollout(phase=phase, phase_reason=reason, failure=failure, current_primary=current, waiting=waiting,
                   pending_restart=[i.name for i in settings if i.pending_restart],
                   pods={p["metadata"]["name"]: p["metadata"].get("uid", "") for p in pods}, outdated=outdated,
                   previous_image=previous_image, major_upgrade_failed=major_job is not None)


def major_upgrade_failure(jobs: Sequence[dict[str, Any]], previous_image: str | None) -> str | None:
    """A major upgrade's Job that failed: CNPG leaves it there until the image is set back (its rollback)."""
    for job in jobs:
        labels = (job.get("metadata") or {}).get("labels") or {}
        conditions = (job.get("status") or {}).get("conditions") or []
        if labels.get("cnpg.io/jobRole") == MAJOR_UPGRADE_ROLE and any(
                c.get("type") == "Failed" and c.get("status") == "True" for c in conditions):
            back = f" back to {previous_image}" if previous_image else " back"
            return (f"the major upgrade Job {job['metadata']['name']} failed (pg_upgrade): the old data directory "
                    f"is untouched; set imageName{back} and CNPG rolls the upgrade back (then read the Job's log)")
    return None


def _small_volumes(spec: ClusterSpec, pvcs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    small = []
    for pvc in pvcs:
        role = ((pvc.get("metadata") or {}).get("labels") or {}).get("cnpg.io/pvcRole")
        volume = spec.wal_storage if role == "PG_WAL" else spec.storage
        if volume is None:
            continue
        has = ((pvc.get("status") or {}).get("capacity") or {}).get("storage")
        size, asked = _mib(has or ""), _mib(volume.size)
        if size is not None and asked is not None and size < asked:
            small.append((pvc["metadata"]["name"], has, volume.size))
    return small


def _amounts(resources: dict[str, Any]) -> tuple[float | None, float]:
    """Memory in MiB and CPU in cores, as the API server may print them otherwise (8192Mi as 8Gi, 2000m as 2)."""
    cpu = str(resources.get("cpu") or "0")
    return _mib(str(resources.get("memory") or "0")), int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)


def _mib(quantity: str) -> float | None:
    """A Kubernetes quantity in MiB (binary or decimal suffixes); None when it does not read."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", quantity)
    if not found:
        return None
    return float(found[1]) * UNITS[found[2] or ""]


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
