"""Patroni's /cluster and /patroni answers mapped onto CNPG's ClusterStatus."""

from shared import status as st
from shared.platforms.local.patroni import cluster_status, lsn

NAMES = ["pg-1", "pg-2", "pg-3"]


def member(name: str, role: str, state: str, **extra: object) -> dict:
    return {"name": name, "role": role, "state": state, "timeline": 1, **extra}


def healthy_topology() -> dict:
    return {"members": [
        member("pg-1", "leader", "running"),
        member("pg-2", "quorum_standby", "streaming", lag=0),
        member("pg-3", "quorum_standby", "streaming", lag=16),
    ]}


def test_healthy_cluster() -> None:
    positions = {"pg-1": {"xlog": {"location": 0x3000060}}, "pg-2": {"xlog": {"replayed_location": 0x3000060}}}
    status = cluster_status("default", "pg", NAMES, healthy_topology(), positions, sync_required=1)
    assert status.phase == st.HEALTHY
    assert status.healthy
    assert (status.instances, status.ready_instances) == (3, 3)
    assert status.current_primary == status.target_primary == "pg-1"
    roles = {i.name: (i.role, i.sync_state, i.lsn) for i in status.instances_status}
    assert roles == {
        "pg-1": ("primary", "primary", "0/3000060"),
        "pg-2": ("standby", "quorum", "0/3000060"),
        "pg-3": ("standby", "quorum", None),
    }
    assert status.instances_status[2].lag_bytes == 16


def test_no_leader_is_failing_over() -> None:
    topology = {"members": [member("pg-2", "replica", "streaming"), member("pg-3", "replica", "running")]}
    status = cluster_status("default", "pg", NAMES, topology, {}, sync_required=1)
    assert status.phase == st.FAILING_OVER
    assert status.current_primary is None
    assert not status.healthy
    assert status.instances_status[0].state == "absent"


def test_nothing_registered_yet_is_setting_up_primary() -> None:
    status = cluster_status("default", "pg", NAMES, None, {}, sync_required=1)
    assert status.phase == st.SETTING_UP_PRIMARY
    assert status.ready_instances == 0
    booting = {"members": [{"name": "pg-1", "role": "replica", "state": "initializing new cluster"},
                           {"name": "pg-2", "role": "replica", "state": "stopped"}]}
    assert cluster_status("default", "pg", NAMES, booting, {}, sync_required=1).phase == st.SETTING_UP_PRIMARY


def test_replica_being_created() -> None:
    topology = healthy_topology()
    topology["members"][2] = member("pg-3", "replica", "creating replica")
    status = cluster_status("default", "pg", NAMES, topology, {}, sync_required=1)
    assert status.phase == st.CREATING_REPLICA
    assert status.ready_instances == 2


def test_missing_sync_standby_is_not_healthy() -> None:
    topology = {"members": [
        member("pg-1", "leader", "running"),
        member("pg-2", "replica", "streaming"),
        member("pg-3", "replica", "streaming"),
    ]}
    status = cluster_status("default", "pg", NAMES, topology, {}, sync_required=1)
    assert status.phase == st.WAITING_FOR_INSTANCES
    assert not status.healthy
    assert cluster_status("default", "pg", NAMES, topology, {}, sync_required=0).phase == st.HEALTHY


def test_scheduled_switchover() -> None:
    topology = {**healthy_topology(), "scheduled_switchover": {"at": "2026-01-01T00:00:00+00:00", "from": "pg-1"}}
    assert cluster_status("default", "pg", NAMES, topology, {}, sync_required=1).phase == st.SWITCHOVER


def test_lsn_format() -> None:
    assert lsn(0) == "0/0"
    assert lsn((5 << 32) + 0xAB) == "5/AB"
    assert lsn(None) is None


def test_primary_view_of_replication_wins_over_patroni() -> None:
    topology = {"members": [
        member("pg-1", "leader", "running"),
        member("pg-2", "replica", "running"),  # Patroni has not caught up yet
        member("pg-3", "replica", "starting"),
    ]}
    replication = {"pg-2": {"state": "streaming", "sync_state": "quorum", "replay_lsn": "0/5000060"},
                   "pg-3": {"state": "streaming", "sync_state": "quorum", "replay_lsn": "0/5000000"}}
    status = cluster_status("default", "pg", NAMES, topology, {}, sync_required=1, replication=replication)
    assert status.phase == st.HEALTHY
    assert [(i.sync_state, i.lsn) for i in status.instances_status[1:]] == [("quorum", "0/5000060"),
                                                                             ("quorum", "0/5000000")]
    catching_up = {"pg-2": {"state": "catchup", "sync_state": "potential", "replay_lsn": None}}
    status = cluster_status("default", "pg", NAMES, healthy_topology(), {}, sync_required=1, replication=catching_up)
    assert status.instances_status[1].ready is False and status.phase != st.HEALTHY


def test_archiving_condition() -> None:
    from datetime import UTC, datetime, timedelta

    from shared.platforms.local.status import archiving_condition

    now = datetime(2026, 1, 1, tzinfo=UTC)
    ok = archiving_condition(("000000010000000000000003", now, None, None), "pg-1")
    assert (ok.status, ok.reason) == ("True", "ContinuousArchivingSuccess")
    failing = archiving_condition(("000000010000000000000003", now, "000000010000000000000004",
                                   now + timedelta(seconds=5)), "pg-1")
    assert (failing.status, failing.reason) == ("False", "ContinuousArchivingFailing")
    assert "000000010000000000000004" in failing.message
    assert archiving_condition(None, None).status == "Unknown"


def test_quorum_must_name_every_standby() -> None:
    replication = {"pg-2": {"state": "streaming", "sync_state": "quorum", "replay_lsn": "0/5000060"},
                   "pg-3": {"state": "streaming", "sync_state": "async", "replay_lsn": "0/5000060"}}
    status = cluster_status("default", "pg", NAMES, healthy_topology(), {}, sync_required=1, replication=replication)
    assert status.phase == st.WAITING_FOR_INSTANCES and not status.healthy
    assert status.ready_instances == 3


def test_a_standby_whose_replay_is_held_back_lags_by_what_it_has_not_replayed() -> None:
    """Patroni 4.1's /cluster gives a standby `lag` from its furthest position (what it received) and
    `replay_lag` from what it replayed: a reader's lock holding replay back shows in the second only."""
    topology = {"members": [
        member("pg-1", "leader", "running"),
        member("pg-2", "quorum_standby", "streaming", lag=0, receive_lag=0, replay_lag=81920),
        member("pg-3", "quorum_standby", "streaming", lag=0, receive_lag=0, replay_lag="unknown"),
    ]}
    status = cluster_status("default", "pg", NAMES, topology, {}, sync_required=1)
    assert [i.lag_bytes for i in status.instances_status] == [None, 81920, 0]
