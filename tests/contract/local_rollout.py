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

import threading
from collections.abc import Callable

from shared import status as st
from shared.platforms.local.platform import LocalPlatform
from shared.spec import ClusterSpec

BECAUSE = "Postgres needs a restart to apply some configuration changes"  # isInstanceNeedingRollout's reason
SUPERVISED = "User must issue a supervised switchover"


class Rollouts:
    def __init__(self, local: LocalPlatform) -> None:
        self.local = local
        self.acting: dict[tuple[str, str], tuple[threading.Thread, str, str]] = {}  # a restart under way
        self.waiting_for_user: set[tuple[str, str]] = set()
        self.errors: list[str] = []  # what a restart raised (a test reads it)

    def phase(self, spec: ClusterSpec, real: st.ClusterStatus) -> tuple[str, str] | None:
        """One reconciliation of the rolling update: the phase and reason CNPG registers, or None when nothing
        rolls (the real members' phase then stands)."""
        key = (spec.namespace, spec.name)
        thread, phase, reason = self.acting.get(key, (None, "", ""))
        if thread is not None and thread.is_alive():
            return phase, reason
        self.acting.pop(key, None)
        if key in self.waiting_for_user:
            return st.WAITING_FOR_USER, SUPERVISED
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
            self.waiting_for_user.add(key)
            return st.WAITING_FOR_USER, SUPERVISED
        if spec.primary_update_method == "switchover" and standbys:
            target = standbys[0].name  # the first standby of CNPG's list
            return self._act(key, st.UPGRADING, BECAUSE, lambda: self.local.promote(spec, target))
        return self._act(key, st.INPLACE_PRIMARY_RESTART, BECAUSE,
                         lambda: self.local.restart_instance(spec, primary.name))

    def user_acted(self, spec: ClusterSpec, phase: str, primary: str | None) -> None:
        """A status patch by a person (or pgha): a promotion ends the wait for the user (the switchover is
        LocalBackedOperator's), an in-place restart request restarts the primary."""
        key = (spec.namespace, spec.name)
        if phase == st.SWITCHOVER:
            self.waiting_for_user.discard(key)
        elif phase == st.INPLACE_PRIMARY_RESTART and primary and key not in self.acting:
            self.waiting_for_user.discard(key)
            self._act(key, st.INPLACE_PRIMARY_RESTART, "Requested by the user",
                      lambda: self.local.restart_instance(spec, primary))

    def _act(self, key: tuple[str, str], phase: str, reason: str, action: Callable[[], object]) -> tuple[str, str]:
        def run() -> None:
            try:
                action()
            except Exception as err:  # kept for the test to read, as CNPG logs it
                self.errors.append(f"{reason}: {err}")

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.acting[key] = (thread, phase, reason)
        return phase, reason
