"""Benchmark: a deploy orchestrated through the API against the same verified deploy done by a straight script.

For the same spec (3 instances, 1 quorum-synchronous standby, sample data), in one run:
(a) orchestrated: POST /api/clusters to the operation's 200, polling every 0.1 s: the deploy runbook
    (orchestrations/deploy_cluster.py) with every step, its checks and its report;
(b) by hand, a sequential script (no HTTP, no durable engine, no report), polling every 0.1 s, each
    check asserting its result:
      1. pre-flight: etcd healthy, Azurite answering, 1 GiB free; the backup container made and the
         archive under the cluster's server name empty (platform.preflight_backup_destination:
         barman-cloud-check-wal-archive);
      2. the namespace, the app user's secret, the cluster applied (platform.ensure_namespace,
         ensure_app_secret, apply_cluster: the 3 Patroni members started);
      3. members up and streaming: one member out of recovery, the two others `streaming` in its
         pg_stat_replication;
      4. monitoring: every member's Patroni /metrics reports patroni_postgres_running 1;
      5. WAL archiving: a marker commit and pg_switch_wal() on the primary, that segment found in the
         object store under <server>/wals/;
      6. sample data: table `datasample` and its 3 rows, written as the app user through the rw service;
      7. replica check: pg_is_in_recovery() false on rw and true on ro, the same count on both;
      8. the quorum standbys named: synchronous_standby_names `ANY 1 (...)` naming both standbys, both
         `quorum` in pg_stat_replication.
    The runbook's steps that do nothing on the local platform (operator config, PodMonitor, backup
    identity, zone spread, endpoints and backup schedule not in the spec) have no counterpart.
(b) is frozen as of the commit that made it this: later speed work changes pgha, never (b).
etcd, Azurite and the devhost are up before either clock starts; each cluster is removed outside both
clocks; each round runs (a) and (b) in turn, first one then the other first. The last line is the ratio a/b.

    ./pgha bench            (or: PYTHONPATH=. python bench/deploy.py --rounds 3)
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import psycopg

from bench import by_hand
from bench.by_hand import Cluster, Member, until
from bench.harness import bench_session, follow, in_turn, print_ratio, rounds

if TYPE_CHECKING:
    from devhost.host import DevHost
    from shared.platforms.local.platform import LocalPlatform

SPEC = {"instances": 3, "synchronousReplicas": 1, "sampleData": True,
        "postgresql": {"parameters": {"shared_buffers": "64MB"}}}
READY_SECONDS = 600  # the runbook's readyTimeoutSeconds
SAMPLE_ROWS = [(1, "John"), (2, "Jane"), (3, "Alice")]


def primary_and_streaming(cluster: Cluster, members: list[Member], hint: list[Member]) -> tuple[Member | None, str]:
    """The member out of recovery once every other member streams from it; the one found last is asked first
    (`hint`), and a look ends at the first member out of recovery."""
    others = len(members) - 1
    seen = []
    for member in hint + [m for m in members if m not in hint]:
        try:
            with cluster.superuser(member) as conn:
                if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    seen.append(f"{member.name} in recovery")
                    continue
                streaming = conn.execute(  # walreceivers, not pg_basebackup's own WAL stream
                    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' "
                    "AND application_name = ANY(%s)", ([m.name for m in members],),
                ).fetchone()[0]
        except psycopg.OperationalError:
            seen.append(f"{member.name} not answering")
            continue
        hint[:] = [member]
        if streaming == others:
            return member, ""
        return None, f"{member.name} primary, {streaming}/{others} streaming"
    return None, "; ".join(seen)


def metrics_report_running(members: list[Member]) -> tuple[bool | None, str]:
    failing = []
    for member in members:
        try:
            text = httpx.get(f"http://127.0.0.1:{member.rest_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            text = ""
        if not any(line.startswith("patroni_postgres_running{") and line.split()[-1] in ("1", "1.0")
                   for line in text.splitlines()):
            failing.append(member.name)
    return (True, "") if not failing else (None, f"/metrics of {', '.join(failing)} without "
                                                 "patroni_postgres_running 1")


def prove_wal_archived(platform: LocalPlatform, cluster: Cluster, primary: Member, container: str,
                       server: str) -> None:
    with cluster.superuser(primary) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = local")
            conn.execute("SET LOCAL statement_timeout = '30s'")
            conn.execute("SELECT txid_current(), clock_timestamp()")
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
    store = by_hand.blob_container(platform.home, container)
    blob = f"{server}/wals/{segment[:16]}/{segment}"
    until(f"WAL segment {segment} in {container}/{blob}",
          lambda: (True if list(store.list_blobs(name_starts_with=blob)) else None, "not there"), 60)


def write_sample(cluster: Cluster) -> None:
    with cluster.app("rw") as conn:
        with conn.transaction():
            conn.execute("CREATE TABLE datasample (id INTEGER, name VARCHAR(255))")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO datasample (id, name) VALUES (%s, %s)", SAMPLE_ROWS)
        count = conn.execute("SELECT count(*) FROM datasample").fetchone()[0]
    assert count == len(SAMPLE_ROWS), count


def probe(cluster: Cluster, role: str) -> tuple[bool, int]:
    with cluster.app(role) as conn:  # type: ignore[arg-type]
        in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        return in_recovery, conn.execute("SELECT count(*) FROM datasample").fetchone()[0]


def check_replica(cluster: Cluster) -> None:
    rw_recovery, rw_count = probe(cluster, "rw")
    assert not rw_recovery, "the rw service reached an instance in recovery"
    assert rw_count == len(SAMPLE_ROWS), rw_count

    def ro() -> tuple[bool | None, str]:
        try:
            ro_recovery, ro_count = probe(cluster, "ro")
        except psycopg.errors.UndefinedTable:  # the standby ro reached has not replayed the CREATE yet
            return None, "datasample not yet on ro"
        assert ro_recovery, "the ro service reached an instance not in recovery"
        return (True if ro_count == rw_count else None), f"datasample: {rw_count} rows on rw, {ro_count} on ro"

    until("the same rows on ro as on rw", ro, 15)


def quorum_named(cluster: Cluster, primary: Member, standbys: list[str], wanted: int) -> tuple[bool | None, str]:
    with cluster.superuser(primary) as conn:
        setting = conn.execute("SELECT current_setting('synchronous_standby_names')").fetchone()[0]
        quorum = dict(conn.execute(
            "SELECT application_name, sync_state FROM pg_stat_replication WHERE state = 'streaming'").fetchall())
    named = by_hand.named_standbys(setting)
    ok = named == (wanted, set(standbys)) and all(quorum.get(s) == "quorum" for s in standbys)
    return (True if ok else None), f"synchronous_standby_names {setting!r}, sync_state {quorum}"


def raw_deploy(platform: LocalPlatform, name: str) -> float:
    from shared.spec import ClusterSpec

    spec = ClusterSpec.model_validate({"name": name, "namespace": "bench", **SPEC})
    cluster = Cluster(platform.home, spec.namespace, spec.name)
    started = time.monotonic()
    by_hand.preflight_stack(platform.home)
    assert platform.preflight_backup_destination(spec).outcome == "done"
    platform.ensure_namespace(spec)
    assert platform.ensure_app_secret(spec).outcome == "done"
    assert platform.apply_cluster(spec).outcome == "done"
    members = cluster.members()
    assert [m.name for m in members] == spec.instance_names
    hint: list[Member] = []
    primary = until("a primary and every standby streaming",
                    lambda: primary_and_streaming(cluster, members, hint), READY_SECONDS)
    until("every member's /metrics", lambda: metrics_report_running(members), 15)
    prove_wal_archived(platform, cluster, primary, spec.backup.container, spec.server_name)
    write_sample(cluster)
    check_replica(cluster)
    standbys = [m.name for m in members if m != primary]
    until("the quorum standbys named", lambda: quorum_named(cluster, primary, standbys, spec.synchronous_replicas),
          READY_SECONDS)
    return time.monotonic() - started


def orchestrated(host: DevHost, name: str) -> float:
    with host.client() as api:
        started = time.monotonic()
        status = follow(api, api.post("/api/clusters", json={"name": name, "namespace": "bench", **SPEC}))
        elapsed = time.monotonic() - started
        assert status.status_code == 200, status.text
        return elapsed


def clean(platform: LocalPlatform, name: str) -> None:
    from shared.spec import ClusterSpec

    spec = ClusterSpec.model_validate({"name": name, "namespace": "bench", **SPEC})
    platform.delete_cluster("bench", name)
    platform.delete_app_secret(spec)
    platform.delete_backups(spec)


def main() -> None:
    count = rounds(__doc__)
    raws, orchestrateds = [], []
    with bench_session() as (platform, host):
        for n in range(count):
            in_turn(n, lambda k: (raws.append(raw_deploy(platform, f"raw-{k}")), clean(platform, f"raw-{k}")),
                    lambda k: (orchestrateds.append(orchestrated(host, f"orch-{k}")), clean(platform, f"orch-{k}")))
            print(f"round {n + 1}: orchestrated {orchestrateds[-1]:.2f} s, raw {raws[-1]:.2f} s", flush=True)
    print_ratio("deploy", orchestrateds, "raw verified deploy", raws)


if __name__ == "__main__":
    main()
