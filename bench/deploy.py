"""Benchmark: a deploy orchestrated through the API against the same members started directly.

(a) orchestrated: POST /api/clusters to the operation's 200, polling every 0.5 s, every step of the
    runbook included (checks, sample data, WAL archiving proof, report);
(b) raw: the same 3 Patroni members for the same spec started by the platform directly, until the
    primary commits a write and both standbys stream.
etcd and Azurite are up before either clock starts. The last line is the ratio a/b.

    ./pgha bench            (or: PYTHONPATH=. python bench/deploy.py --rounds 3)
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import psycopg

from bench.harness import bench_session, print_ratio, rounds

if TYPE_CHECKING:
    from devhost.host import DevHost
    from shared.platforms.local.platform import LocalPlatform

SPEC = {"instances": 3, "synchronousReplicas": 1, "sampleData": True,
        "postgresql": {"parameters": {"shared_buffers": "64MB"}}}


def raw_start(platform: LocalPlatform, name: str) -> float:
    from shared.spec import ClusterSpec

    spec = ClusterSpec.model_validate({"name": name, "namespace": "bench", **SPEC})
    started = time.monotonic()
    platform.preflight_backup_destination(spec)
    platform.ensure_app_secret(spec)
    platform.apply_cluster(spec)
    members = platform._members("bench", name)
    while True:
        for member in members:
            try:
                with psycopg.connect(platform._superuser_dsn(spec, member.name), autocommit=True) as conn:
                    conn.execute("SET statement_timeout = '1s'")
                    if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        continue
                    conn.execute("CREATE TABLE IF NOT EXISTS bench_write (at timestamptz)")
                    conn.execute("INSERT INTO bench_write VALUES (now())")
                    streaming = conn.execute(  # walreceivers, not pg_basebackup's own WAL stream
                        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' "
                        "AND application_name = ANY(%s)", ([m.name for m in members],),
                    ).fetchone()[0]
                    if streaming == 2:
                        return time.monotonic() - started
            except psycopg.Error:
                pass
        time.sleep(0.1)


def orchestrated(host: DevHost, name: str) -> float:
    with host.client() as api:
        started = time.monotonic()
        response = api.post("/api/clusters", json={"name": name, "namespace": "bench", **SPEC})
        assert response.status_code == 202, response.text
        while (status := api.get(response.headers["Location"])).status_code == 202:
            time.sleep(0.5)
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
            raws.append(raw_start(platform, f"raw-{n}"))
            clean(platform, f"raw-{n}")
            orchestrateds.append(orchestrated(host, f"orch-{n}"))
            clean(platform, f"orch-{n}")
            print(f"round {n + 1}: orchestrated {orchestrateds[-1]:.2f} s, raw {raws[-1]:.2f} s", flush=True)
    print_ratio("deploy", orchestrateds, "raw Patroni start", raws)


if __name__ == "__main__":
    main()
