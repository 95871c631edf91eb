"""shared/platforms/aks/cnpg.py: ClusterStatus.failure only on a final sign, never on a routine state.

The shapes are Kubernetes' (k8s.io/api core/v1 ContainerStatus, batch/v1 JobCondition, v0.36.3) and CNPG's
(Cluster status.phase/phaseReason, Jobs labelled cnpg.io/cluster and cnpg.io/jobRole, v1.30.0)."""

from __future__ import annotations

from typing import Any

import pytest

from shared import status as st
from shared.platforms.aks import cnpg

SINCE = "2026-11-26T03:00:00Z"


def cluster(phase: str = st.SETTING_UP_PRIMARY, reason: str = "", instances: int = 3) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "instances": instances, "instanceNames": ["pg-1"]}
    if reason:
        status["phaseReason"] = reason
    return {"metadata": {"name": "pg", "namespace": "db"}, "spec": {"instances": instances}, "status": status}


def pod(name: str = "pg-1", phase: str = "Running", init: list[dict[str, Any]] | None = None,
        containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "conditions": [{"type": "Ready", "status": "False"}]}
    if init is not None:
        status["initContainerStatuses"] = init
    if containers is not None:
        status["containerStatuses"] = containers
    return {"metadata": {"name": name, "labels": {"cnpg.io/cluster": "pg", "cnpg.io/podRole": "instance"}},
            "status": status}


def container(restarts: int, waiting: str | None = "CrashLoopBackOff", name: str = "postgres",
              last: dict[str, Any] | None = None) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting, "message": "back-off 40s restarting failed container"}} if waiting \
        else {"running": {"startedAt": SINCE}}
    found: dict[str, Any] = {"name": name, "ready": False, "restartCount": restarts, "state": state}
    if last is not None:
        found["lastState"] = {"terminated": last}
    return found


def job(name: str, role: str | None = "initdb", **status: Any) -> dict[str, Any]:
    labels = {"cnpg.io/cluster": "pg", "cnpg.io/instanceName": "pg-1"}
    if role:
        labels["cnpg.io/jobRole"] = role
    return {"metadata": {"name": name, "labels": labels}, "status": status}


def condition(kind: str, state: str = "True", reason: str = "BackoffLimitExceeded",
              message: str = "Job has reached the specified backoff limit") -> dict[str, Any]:
    return {"type": kind, "status": state, "reason": reason, "message": message, "lastTransitionTime": SINCE}


CRASHED = {"exitCode": 1, "reason": "Error", "message": "", "startedAt": SINCE, "finishedAt": SINCE}


# ---- routine: never a failure ---------------------------------------------------------------------

ROUTINE = {
    "pods pending": ([pod(phase="Pending")], []),
    "container creating": ([pod(phase="Pending", containers=[container(0, "ContainerCreating")])], []),
    "image pulling": ([pod(phase="Pending", containers=[container(0, "PodInitializing")])], []),
    "one restart": ([pod(containers=[container(1, last=CRASHED)])], []),
    "two restarts": ([pod(containers=[container(2, last=CRASHED)])], []),
    "restarted often, running again": ([pod(containers=[container(9, waiting=None, last=CRASHED)])], []),
    "job running": ([], [job("pg-1-initdb", active=1, startTime=SINCE)]),
    "job retrying, fewer failed pods than the threshold": ([], [job("pg-1-initdb", active=1, failed=2)]),
    "job complete": ([], [job("pg-1-initdb", succeeded=1, conditions=[
        condition("SuccessCriteriaMet", reason="CompletionsReached", message="Reached expected number of "
                  "succeeded pods"), condition("Complete", reason="CompletionsReached", message="")])]),
    "job failed, condition False": ([], [job("pg-1-initdb", conditions=[condition("Failed", "False")])]),
    "a failed job of an instance that runs now": ([{**pod(), "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True"}]}}], [job("pg-1-initdb", conditions=[condition("Failed")])]),
    "job without a jobRole": ([], [job("pg-backup-probe", role=None, conditions=[condition("Failed")])]),
    "major upgrade job failed (CNPG rolls it back)": ([], [job("pg-1-major-upgrade", role="major-upgrade",
                                                                 conditions=[condition("Failed")])]),
}


@pytest.mark.parametrize("pods, jobs", ROUTINE.values(), ids=ROUTINE.keys())
def test_routine_states_set_no_failure(pods: list[dict[str, Any]], jobs: list[dict[str, Any]]) -> None:
    status = cnpg.cluster_status("db", "pg", cluster(), pods, jobs)
    assert status.failure is None


@pytest.mark.parametrize("phase, reason", [
    (st.SETTING_UP_PRIMARY, ""),
    (st.CREATING_REPLICA, "Creating replica pg-2-join"),
    (st.FAILING_OVER, "Failing over from pg-1 to pg-2"),
    (st.SWITCHOVER, "Switching over to pg-2"),
    (st.WAITING_FOR_INSTANCES, "Some instances are not yet active. Please wait."),
    (st.HEALTHY, ""),
])
def test_routine_phases_set_no_failure_and_keep_their_reason(phase: str, reason: str) -> None:
    status = cnpg.cluster_status("db", "pg", cluster(phase, reason), [pod()], [])
    assert status.failure is None
    assert (status.phase, status.phase_reason) == (phase, reason)


def test_a_missing_cluster_has_no_failure() -> None:
    status = cnpg.cluster_status("db", "pg", None)
    assert status.phase == st.NOT_FOUND and status.failure is None and status.phase_reason == ""


# ---- final signs ----------------------------------------------------------------------------------

def test_the_unrecoverable_phase_quotes_its_reason() -> None:
    reason = "No pods are active, the cluster needs manual intervention "
    status = cnpg.cluster_status("db", "pg", cluster(st.UNRECOVERABLE, reason), [pod()], [])
    assert status.phase_reason == reason
    assert status.failure == f"CNPG: {st.UNRECOVERABLE}: No pods are active, the cluster needs manual intervention"
    bare = cnpg.cluster_status("db", "pg", cluster(st.UNRECOVERABLE), [], [])
    assert bare.failure == f"CNPG: {st.UNRECOVERABLE}: no reason given"


def test_crash_looping_at_the_threshold_quotes_the_last_exit() -> None:
    last = {"exitCode": 2, "reason": "Error", "message": "FATAL:  could not\n open  file \"postgresql.conf\""}
    pods = [pod(containers=[container(3, last=last)])]
    status = cnpg.cluster_status("db", "pg", cluster(), pods, [])
    assert status.failure == ('pod pg-1 container postgres in CrashLoopBackOff after 3 restarts; last exit: Error '
                              '(exit code 2): FATAL: could not open file "postgresql.conf"')
    oom = [pod(containers=[container(4, last={"exitCode": 137, "reason": "OOMKilled"})])]
    assert cnpg.cluster_status("db", "pg", cluster(), oom, []).failure == (
        "pod pg-1 container postgres in CrashLoopBackOff after 4 restarts; last exit: OOMKilled (exit code 137)")
    unknown = [pod(containers=[container(3)])]
    assert cnpg.cluster_status("db", "pg", cluster(), unknown, []).failure.endswith("no last termination recorded")


def test_the_threshold_is_the_setting() -> None:
    pods = [pod(containers=[container(4, last=CRASHED)])]
    assert cnpg.cluster_status("db", "pg", cluster(), pods, [], crashloop_restarts=5).failure is None
    assert cnpg.cluster_status("db", "pg", cluster(), pods, [], crashloop_restarts=4).failure is not None


def test_an_init_container_crash_looping_counts_as_cnpg_counts_it() -> None:
    """pkg/utils/pod_conditions.go IsPodAlive looks at init containers too (bootstrap-controller)."""
    pods = [pod(phase="Pending", init=[container(5, name="bootstrap-controller", last=CRASHED)])]
    failure = cnpg.cluster_status("db", "pg", cluster(), pods, []).failure
    assert failure == ("pod pg-1 container bootstrap-controller in CrashLoopBackOff after 5 restarts; last exit: "
                       "Error (exit code 1)")


@pytest.mark.parametrize("role", ["initdb", "import", "full-recovery", "snapshot-recovery", "pgbasebackup", "join"])
def test_a_failed_instance_job_quotes_its_condition(role: str) -> None:
    jobs = [job(f"pg-1-{role}", role=role, failed=7, conditions=[condition("FailureTarget"), condition("Failed")])]
    status = cnpg.cluster_status("db", "pg", cluster(), [], jobs)
    assert status.failure == (f"{role} job pg-1-{role} failed: BackoffLimitExceeded: Job has reached the specified "
                              "backoff limit")


def test_a_job_whose_pods_failed_as_often_as_the_threshold_is_final_before_its_backoff_limit() -> None:
    """The Job controller would retry to backoffLimit 6 with a back-off doubling from 10 s (about 10 minutes
    before Failed); the threshold's worth of failed pods already says the same, within a minute."""
    status = cnpg.cluster_status("db", "pg", cluster(), [], [job("pg-1-full-recovery", role="full-recovery",
                                                                     active=1, failed=3)])
    assert status.failure == "full-recovery job pg-1-full-recovery: 3 pods failed"


def test_a_job_past_its_deadline_says_so() -> None:
    jobs = [job("pg-2-join", role="join", conditions=[condition("Failed", reason="DeadlineExceeded",
                                                                 message="Job was active longer than specified "
                                                                         "deadline")])]
    assert cnpg.cluster_status("db", "pg", cluster(), [], jobs).failure == (
        "join job pg-2-join failed: DeadlineExceeded: Job was active longer than specified deadline")


def test_every_sign_is_quoted() -> None:
    reason = "Instance creation failed for the following jobs: pg-1-initdb. Check the job logs to investigate the " \
             "cause of the failure."
    jobs = [job("pg-1-initdb", conditions=[condition("Failed")])]
    pods = [pod("pg-2", containers=[container(3, last=CRASHED)])]
    failure = cnpg.cluster_status("db", "pg", cluster(st.UNRECOVERABLE, reason), pods, jobs).failure
    assert failure == (f"CNPG: {st.UNRECOVERABLE}: {reason}; initdb job pg-1-initdb failed: BackoffLimitExceeded: "
                       "Job has reached the specified backoff limit; pod pg-2 container postgres in CrashLoopBackOff "
                       "after 3 restarts; last exit: Error (exit code 1)")


def test_the_answer_a_wait_polls_carries_it() -> None:
    """activities/cluster.get_cluster_status answers ClusterStatus.dump(): Runbook.wait_until reads `failure`."""
    answer = cnpg.cluster_status("db", "pg", cluster(st.UNRECOVERABLE, "gone"), [], []).dump()
    assert answer["failure"] == f"CNPG: {st.UNRECOVERABLE}: gone" and answer["phaseReason"] == "gone"
