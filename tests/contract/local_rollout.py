"""CNPG's rolling update, played by LocalBackedOperator over real Patroni members.

What it does is what cloudnative-pg v1.30.0 does (internal/controller/cluster_upgrade.go,
rolloutRequiredInstances and updatePrimaryPod; api/v1/cluster_types.go for the phases):

- A new spec reaches every instance manager, which reloads it: locally the members' Patroni configuration
  is patched (LocalPlatform.apply_cluster); a parameter that needs a restart then shows as pending_restart.
- While a standby waits for a restart, the most lagged one (ties: the last by name, as CNPG walks its
  list, sorted by received then replayed LSN and then by name, from the end) is restarted, one per
  reconciliation, with the phase "Upgrading cluster" and the reason "Restarting instance <pod>, because:
  Postgres needs a restart to apply some configuration changes". CNPG deletes the pod; here Patroni
  restarts the member's PostgreSQL.
- Then the primary: with `primaryUpdateStrategy: supervised` the phase "Waiting for user action", reason
  "User must issue a supervised switchover", until a person promotes a standby (status.targetPrimary,
  `kubectl cnpg promote`) or restarts the primary (the phase "Primary instance is being restarted
  in-place", `kubectl cnpg restart`); else `primaryUpdateMethod: restart` restarts it in place under that
  phase, and `switchover` promotes the first standby of the lag-sorted list ("Upgrading cluster"), the
  former primary then rolled as a standby.
- Nothing waits for a restart any more: the real members' phase shows again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from shared import status as st
from shared.platforms.local.platform import LocalPlatform
from shared.spec import ClusterSpec
from tests.contract.fake_kube import FakeKubeApi

BECAUSE = "Postgres needs a restart to apply some configuration changes"  # isInstanceNeedingRollout's reason
SUPERVISED = "User must issue a supervised switchover"
LOG = logging.getLogger(__name__)


class Rollouts:
    def __init__(self, local: LocalPlatform) -> None:
        self.local = local
        self.acting: dict[tuple[str, str], tuple[threading.Thread, str, str]] = {}  # a restart under way
        self.switching: dict[tuple[str, str], str] = {}  # a promotion asked (status.targetPrimary), not yet done

    def phase(self, spec: ClusterSpec, real: st.ClusterStatus) -> tuple[str, str] | None:
        """One reconciliation of the rolling update: the phase and reason CNPG registers, or None when nothing
        rolls (the real members' phase then stands)."""
        key = (spec.namespace, spec.name)
        if self._busy(key):
            return self.acting[key][1:]
        self.acting.pop(key, None)
        if key in self.switching:  # CNPG switches over first (targetPrimary != currentPrimary), then rolls on
            if real.current_primary != self.switching[key]:
                return st.SWITCHOVER, f"Switching over to {self.switching[key]}"
            del self.switching[key]
        if real.phase != st.HEALTHY or not all(i.ready for i in real.instances_status):
            return None
        # CNPG's list (pkg/postgres/status.go Less): the most advanced standby first, ties by name
        standbys = sorted((i for i in real.instances_status if i.role == "standby"),
                          key=lambda i: (i.lag_bytes or 0, i.name))
        waiting = [i for i in standbys if i.pending_restart]
        if waiting:
            chosen = waiting[-1]  # walked from the end: the most lagged first
            return self._act(key, st.UPGRADING, f"Restarting instance {chosen.name}, because: {BECAUSE}",
                             lambda: self.local.restart_instance(spec, chosen.name))
        primary = next((i for i in real.instances_status if i.role == "primary"), None)
        if primary is None or not primary.pending_restart:
            return None
        if spec.primary_update_strategy == "supervised":
            return st.WAITING_FOR_USER, SUPERVISED
        if spec.primary_update_method == "switchover" and standbys:
            target = standbys[0].name  # the first standby of CNPG's list
            return self._act(key, st.UPGRADING, BECAUSE, lambda: self.local.promote(spec, target))
        return self._act(key, st.INPLACE_PRIMARY_RESTART, BECAUSE,
                         lambda: self.local.restart_instance(spec, primary.name))

    def user_acted(self, spec: ClusterSpec, phase: str, target: str | None, primary: str | None) -> None:
        """A status patch by a person (or pgha): a promotion is followed until the new primary runs (the
        switchover itself is LocalBackedOperator's), an in-place restart request restarts the primary."""
        key = (spec.namespace, spec.name)
        if phase == st.SWITCHOVER and target:
            self.switching[key] = target
        elif phase == st.INPLACE_PRIMARY_RESTART and primary and not self._busy(key):
            self._act(key, st.INPLACE_PRIMARY_RESTART, "Requested by the user",
                      lambda: self.local.restart_instance(spec, primary))

    def _busy(self, key: tuple[str, str]) -> bool:
        return key in self.acting and self.acting[key][0].is_alive()

    def _act(self, key: tuple[str, str], phase: str, reason: str, action: Callable[[], object]) -> tuple[str, str]:
        def run() -> None:
            try:
                action()
            except Exception:  # CNPG logs it and tries again at a later reconciliation
                LOG.exception("%s", reason)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.acting[key] = (thread, phase, reason)
        return phase, reason


class MajorUpgrades:
    """CNPG's offline in-place major upgrade (pkg/reconciler/majorupgrade, v1.30.0) where this machine has one
    PostgreSQL: the Cluster goes "Upgrading Postgres major version" ("Upgrading cluster to major version N"),
    every pod is deleted, and the Job `<primary>-major-upgrade` (jobRole major-upgrade, backoffLimit 0: "a
    failed pg_upgrade will not succeed on retry") fails at its next reconciliation, as pg_upgrade must
    without the new major's binaries; CNPG waits there. The image set back is CNPG's rollback
    (handleRollbackIfNeeded): the Job is deleted and the pods come back on the old major. The real members
    keep running underneath: only the API's view of them is gone while the upgrade stands."""

    def __init__(self, api: FakeKubeApi) -> None:
        self.api = api
        self.asked: dict[tuple[str, str], tuple[int, str]] = {}  # the major and image asked, while upgrading

    def start(self, namespace: str, name: str, primary: str, major: int, image: str) -> None:
        self.asked[(namespace, name)] = (major, image)
        for path in [p for p, o in self.api.objects.items() if p.startswith(f"/api/v1/namespaces/{namespace}/pods/")
                     and (o.get("metadata") or {}).get("labels", {}).get("cnpg.io/cluster") == name]:
            del self.api.objects[path]
        job = f"{primary}-major-upgrade"
        self.api.objects[f"/apis/batch/v1/namespaces/{namespace}/jobs/{job}"] = {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job, "namespace": namespace, "labels": {
                "cnpg.io/cluster": name, "cnpg.io/instanceName": primary, "cnpg.io/jobRole": "major-upgrade"}},
            "spec": {"backoffLimit": 0}, "status": {"active": 1, "startTime": "2026-11-26T03:00:00Z"}}

    def roll_back(self, namespace: str, name: str) -> None:
        if self.asked.pop((namespace, name), None) is None:
            return
        for path in [p for p, o in self.api.objects.items() if p.startswith(f"/apis/batch/v1/namespaces/{namespace}/")
                     and o["metadata"]["labels"].get("cnpg.io/cluster") == name]:
            del self.api.objects[path]

    def status(self, namespace: str, name: str, old_image: str, old_major: int) -> dict[str, Any] | None:
        """One reconciliation while the upgrade stands: the Job's pod fails; the Cluster's status, or None."""
        if (namespace, name) not in self.asked:
            return None
        major, image = self.asked[(namespace, name)]
        for path, job in self.api.objects.items():
            if path.startswith(f"/apis/batch/v1/namespaces/{namespace}/jobs/") and job["status"].get("active"):
                job["status"] = {"failed": 1, "conditions": [  # batch/v1: past backoffLimit 0
                    {"type": kind, "status": "True", "reason": "BackoffLimitExceeded",
                     "message": "Job has reached the specified backoff limit"} for kind in ("FailureTarget", "Failed")]}
        return {"phase": st.MAJOR_UPGRADE, "phaseReason": f"Upgrading cluster to major version {major}",
                "image": image, "readyInstances": 0, "pgDataImageInfo": {"image": old_image, "majorVersion": old_major},
                "conditions": [{"type": "Ready", "status": "False", "reason": "ClusterIsNotReady"}]}
