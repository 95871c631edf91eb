"""Benchmark: a restore orchestrated through the API against the same verified restore done by a straight script.

For the same source (2 instances with sample data, one verified backup), in one run:
(a) orchestrated: POST /api/clusters/{name}/restores with one SQL check, to the operation's 200 (polling
    every 0.1 s): the restore runbook (orchestrations/restore_cluster.py, activities/restore.py) with every
    step — the source's recorded spec, the recovery pre-flight (a completed backup), the doctor's pre-flight,
    the backup destination's pre-flight, a 1-instance Patroni recovery cluster applied through the platform
    (bootstrapped from the source's object store, archiving under its own server name), the wait until it is
    healthy, the check, the clean-up (orchestrations/teardown_cluster.py's remove_cluster: the cluster
    stopped at once and its archive deleted) — and its report;
(b) by hand, a sequential script doing that work by the same mechanism an operator uses on this platform
    (the public Platform methods, as deploy's (b) calls apply_cluster), with no HTTP, no durable engine and
    no report, polling every 0.1 s, each step asserting its result:
      1. pre-flight: etcd healthy, Azurite answering, 1 GiB free; the source's recorded spec
         (platform.stored_spec); a completed backup (backup.info DONE, data files) in its archive
         (platform.backup_container);
      2. restore: the recovery spec built as the runbook builds it (shared.restore.restore_spec(source,
         name, 1, None, None), a server name of its own), platform.preflight_backup_destination (the archive
         under that server name empty) and platform.apply_cluster (one Patroni member restoring with
         barman-cloud-restore, replaying WAL with barman-cloud-wal-restore, then promoted);
      3. recovery: platform.cluster_status polled until healthy (the runbook's "wait ready"), ending at
         once on the platform's failure sign;
      4. the same SQL check: the query in a read-only transaction through platform.connect(ns, name, "rw",
         database) as the app user, its answer asserted;
      5. clean-up, in the runbook's order, also when a step failed: platform.remove_endpoints,
         remove_scheduled_backups, delete_cluster(graceful=False), remaining_volumes polled until 0,
         remove_backup_identity, delete_backups. Outside the clock: no cluster record and no blob left
         under (b)'s server name.
    Clean-up is inside both clocks ((a)'s 200 comes after pgha's clean-up).
(b) is frozen as of the commit that made it this: later speed work changes pgha, never (b).
The last line is the ratio a/b.

    ./pgha bench restore            (or: PYTHONPATH=. python bench/restore.py --rounds 3)
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx

from bench import by_hand
from bench.by_hand import until
from bench.harness import bench_session, follow, in_turn, print_ratio, rounds

if TYPE_CHECKING:
    from shared.platforms.local.platform import LocalPlatform
    from shared.spec import ClusterSpec

SPEC = {"name": "bench-src", "namespace": "bench", "instances": 2, "sampleData": True,
        "postgresql": {"parameters": {"shared_buffers": "64MB"}}}
QUERY = "SELECT count(*) FROM datasample"
RECOVERY_SECONDS = 1800  # the runbook's restoreTimeoutSeconds
VOLUMES_SECONDS = 600  # the runbook's readyTimeoutSeconds, its wait for the volumes' release


def orchestrated(api: httpx.Client, expected: int) -> float:
    started = time.monotonic()
    done = follow(api, api.post("/api/clusters/bench-src/restores", params={"namespace": "bench"}, json={
        "checks": [{"name": "rows", "query": QUERY, "expected": expected}]}))
    elapsed = time.monotonic() - started
    assert done.status_code == 200, done.text
    return elapsed


def raw_name(round_no: int) -> str:
    return f"{SPEC['name']}-raw{round_no}"  # its own cluster and server name, as the recovery cluster's


def preflight(platform: LocalPlatform) -> ClusterSpec:
    """The stack, the source's recorded spec and a completed backup in its archive; answers that spec."""
    by_hand.preflight_stack(platform.home)
    source = platform.stored_spec(SPEC["namespace"], SPEC["name"])
    assert source is not None, f"the source {SPEC['namespace']}/{SPEC['name']} does not exist"
    store, server = platform.backup_container(source), source.server_name
    names = store.names(f"{server}/")
    completed = []
    for name in names:
        parts = name.split("/")
        if len(parts) == 4 and parts[1] == "base" and parts[3] == "backup.info":
            info = store.read(name).decode()
            data = [n for n in names if n.startswith(f"{server}/base/{parts[2]}/data.tar")]
            if "status=DONE" in info.splitlines() and data:
                completed.append(parts[2])
    assert completed, f"no completed backup under {source.backup.container}/{server}/base/"
    return source


def healthy(platform: LocalPlatform, target: ClusterSpec) -> tuple[bool | None, str]:
    status = platform.cluster_status(target.namespace, target.name)
    if status.failure:
        raise AssertionError(f"{target.namespace}/{target.name} cannot become healthy: {status.failure}")
    seen = (f"phase {status.phase!r} {status.phase_reason}, {status.ready_instances}/{status.instances} ready, "
            f"primary {status.current_primary or 'none'}")
    return (True if status.healthy else None), seen


def check(platform: LocalPlatform, target: ClusterSpec, expected: int) -> None:
    with platform.connect(target.namespace, target.name, "rw", target.bootstrap.database) as conn:
        conn.read_only = True
        with conn.transaction():
            conn.execute("SET LOCAL statement_timeout = '30s'")
            got = conn.execute(QUERY).fetchone()[0]
    assert got == expected, f"{QUERY}: expected {expected}, got {got}"


def clean_up(platform: LocalPlatform, target: ClusterSpec) -> None:
    """The runbook's remove_cluster for a restore: its archive is deleted, so it stops at once; the app secret
    is the source's and stays."""
    ns, name = target.namespace, target.name
    assert platform.remove_endpoints(ns, name).outcome in ("done", "unchanged", "skipped")
    assert platform.remove_scheduled_backups(ns, name).outcome in ("done", "unchanged", "skipped")
    assert platform.delete_cluster(ns, name, graceful=False).outcome in ("done", "unchanged")
    until(f"{ns}/{name}'s volumes released",
          lambda: (True if (left := platform.remaining_volumes(ns, name)) == 0 else None, f"{left} left"),
          VOLUMES_SECONDS)
    assert platform.remove_backup_identity(target).outcome in ("done", "unchanged", "skipped")
    assert platform.delete_backups(target).outcome == "done"


def raw(platform: LocalPlatform, expected: int, round_no: int) -> float:
    from shared.restore import restore_spec

    started = time.monotonic()
    source = preflight(platform)
    target = restore_spec(source, raw_name(round_no), 1, None, None)
    assert target.server_name == target.name != source.server_name, target.server_name
    made = False
    try:
        assert platform.preflight_backup_destination(target).outcome == "done"
        made = True
        assert platform.apply_cluster(target).outcome == "done"
        until(f"{target.namespace}/{target.name} healthy", lambda: healthy(platform, target), RECOVERY_SECONDS)
        check(platform, target, expected)
    finally:
        if made:
            clean_up(platform, target)
    elapsed = time.monotonic() - started
    assert_gone(platform, target)
    return elapsed


def assert_gone(platform: LocalPlatform, target: ClusterSpec) -> None:
    """Outside the clock: (b) left no cluster record, no retained spec and no blob under its server name."""
    assert platform.stored_spec(target.namespace, target.name) is None, "the cluster record is left"
    assert not platform.records.cluster_dir(target.namespace, target.name).exists(), "the cluster's directory is left"
    assert platform.retained_specs(target.namespace, target.name) == [], "a retained spec is left"
    left = platform.backup_container(target).names(f"{target.server_name}/")
    assert not left, f"{len(left)} blob(s) left under {target.backup.container}/{target.server_name}/"


def main() -> None:
    count = rounds(__doc__)
    raws, orchestrateds = [], []
    with bench_session() as (platform, host), host.client() as api:
        assert follow(api, api.post("/api/clusters", json=SPEC)).status_code == 200
        verified = follow(api, api.post("/api/clusters/bench-src/backups", params={"namespace": "bench"}, json={}))
        assert verified.status_code == 200, verified.text
        for n in range(count):
            in_turn(n, lambda k: raws.append(raw(platform, 3, k)), lambda _: orchestrateds.append(orchestrated(api, 3)))
            print(f"round {n + 1}: orchestrated {orchestrateds[-1]:.2f} s, raw {raws[-1]:.2f} s", flush=True)
        follow(api, api.delete("/api/clusters/bench-src", params={"namespace": "bench", "deleteBackups": "true"}))
    print_ratio("restore", orchestrateds, "raw verified restore (the platform's recovery cluster, clean-up "
                "included)", raws)


if __name__ == "__main__":
    main()
