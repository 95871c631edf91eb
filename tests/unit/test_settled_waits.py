"""When a change that restarted instances may call itself done: CNPG's healthy phase comes while a restarted
standby still catches up, and the next run's pre-flight (an in-sync standby) then refuses."""

from __future__ import annotations

import pytest

from activities.drills import readiness_problems
from orchestrations.steps import standbys_in_sync, standbys_said
from shared.spec import ClusterSpec
from shared.status import HEALTHY, ClusterStatus, InstanceStatus

SPEC = ClusterSpec(name="pg", namespace="ns", instances=3, synchronous_replicas=1)


def status(*standbys: tuple[bool, str], phase: str = HEALTHY) -> ClusterStatus:
    instances = [InstanceStatus(name="pg-1", role="primary", ready=True, sync_state="primary")]
    instances += [InstanceStatus(name=f"pg-{n}", role="standby", ready=ready, sync_state=sync)
                  for n, (ready, sync) in enumerate(standbys, start=2)]
    ready = sum(i.ready for i in instances)
    return ClusterStatus(name="pg", namespace="ns", phase=phase, instances=len(instances), ready_instances=ready,
                         current_primary="pg-1", instances_status=instances)


@pytest.mark.parametrize(("spec", "seen", "settled"), [
    (SPEC, status((True, "quorum"), (True, "async")), True),  # ANY 1: one in sync is what was asked
    (SPEC, status((True, "async"), (True, "async")), False),  # healthy by CNPG's phase, none in sync yet
    (SPEC, status((True, "sync"), (True, "potential")), True),  # FIRST 1
    (SPEC, status((True, "quorum"), (False, "async")), False),  # a standby still down
    (SPEC, status((True, "quorum"), (True, "quorum"), phase="Waiting for the instances to become active"), False),
    (SPEC.model_copy(update={"synchronous_replicas": 2}), status((True, "quorum"), (True, "async")), False),
    (SPEC.model_copy(update={"synchronous_replicas": 2, "instances": 2}), status((True, "quorum")), True),
    (SPEC.model_copy(update={"synchronous_replicas": 0}), status((True, "async"), (True, "async")), True),
])
def test_a_change_is_settled_when_the_standbys_the_spec_keeps_in_sync_are(
        spec: ClusterSpec, seen: ClusterStatus, settled: bool) -> None:
    assert standbys_in_sync(spec)(seen) is settled


def test_settled_means_the_next_pre_flight_passes() -> None:
    """Every state the wait accepts for a synchronous cluster, the readiness check of a drill, a switchover or
    an update accepts too (lag aside, which the wait does not judge)."""
    for seen in (status((True, "quorum"), (True, "async")), status((True, "sync"), (True, "potential"))):
        assert standbys_in_sync(SPEC)(seen)
        assert readiness_problems(seen, max_lag_bytes=1 << 30)[0] == []
    refused = status((True, "async"), (True, "async"))
    assert not standbys_in_sync(SPEC)(refused)
    assert readiness_problems(refused, max_lag_bytes=1 << 30)[0] == ["no in-sync standby"]


def test_a_wait_on_the_standbys_names_each_one_s_state() -> None:
    """A wait that times out quotes its last look: which standby is not back, or not in sync."""
    said = standbys_said(status((True, "quorum"), (False, "async")))
    assert said.endswith("standbys: pg-2 ready quorum, pg-3 not ready async"), said
