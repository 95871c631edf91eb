"""Benchmark: a restore orchestrated through the API against the same restore done by hand.

For the same backup, in one run:
(a) orchestrated: POST /api/clusters/{name}/restores with one check, to the operation's 200 (polling
    every 0.5 s): pre-flights, a recovery cluster bootstrapped by Patroni, the check, the clean-up;
(b) raw: barman-cloud-restore, then PostgreSQL started with barman-cloud-wal-restore as its
    restore_command until the same query answers on the promoted server.
The last line is the ratio a/b.

    ./pgha bench restore            (or: PYTHONPATH=. python bench/restore.py --rounds 3)
"""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import TYPE_CHECKING

import httpx
import psycopg

from bench.harness import bench_session, print_ratio, rounds

if TYPE_CHECKING:
    from shared.platforms.local.platform import LocalPlatform

SPEC = {"name": "bench-src", "namespace": "bench", "instances": 2, "sampleData": True,
        "postgresql": {"parameters": {"shared_buffers": "64MB"}}}
QUERY = "SELECT count(*) FROM datasample"


def follow(api: httpx.Client, response: httpx.Response) -> httpx.Response:
    assert response.status_code == 202, response.text
    while (status := api.get(response.headers["Location"])).status_code == 202:
        time.sleep(0.5)
    return status


def orchestrated(api: httpx.Client, expected: int) -> float:
    started = time.monotonic()
    done = follow(api, api.post("/api/clusters/bench-src/restores", params={"namespace": "bench"}, json={
        "checks": [{"name": "rows", "query": QUERY, "expected": expected}]}))
    elapsed = time.monotonic() - started
    assert done.status_code == 200, done.text
    return elapsed


def as_service_user(platform: LocalPlatform, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess:
    account = platform.account
    if account is not None:
        argv = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups", *argv]
    return subprocess.run(argv, env=platform._barman_env(), check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]


def raw(platform: LocalPlatform, expected: int, round_no: int) -> float:
    from shared.platforms.local import processes
    from shared.platforms.local.stack import PG_BIN, TOOLS_BIN
    from shared.spec import ClusterSpec

    spec = ClusterSpec.model_validate(SPEC)
    base = platform.home / "bench-raw" / str(round_no)
    processes.chown_to(base, platform.account)
    data, run = base / "data", base / "run"
    processes.chown_to(run, platform.account)
    (port,) = processes.free_ports(1)
    destination = platform._destination(spec)
    started = time.monotonic()
    as_service_user(platform, [f"{TOOLS_BIN}/barman-cloud-restore", "--cloud-provider", "azure-blob-storage",
                               destination, spec.server_name, "auto", str(data)])
    conf = (
        f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{run}'\n"
        "shared_buffers = '64MB'\narchive_mode = off\nhot_standby = on\n"
        f"restore_command = '{TOOLS_BIN}/barman-cloud-wal-restore --cloud-provider azure-blob-storage "
        f"{destination} {spec.server_name} %f %p'\n"
        "recovery_target_timeline = 'latest'\nrecovery_target_action = 'promote'\n"
    )
    processes.write_private(data / "postgresql.conf", conf, platform.account)
    processes.write_private(data / "postgresql.auto.conf", "", platform.account)
    processes.write_private(data / "pg_hba.conf", "local all all trust\n", platform.account)
    processes.write_private(data / "recovery.signal", "", platform.account)
    as_service_user(platform, [f"{PG_BIN}/pg_ctl", "-D", str(data), "-l", str(base / "log"), "start"])
    try:
        while True:
            try:
                with psycopg.connect(host=str(run), port=port, user="postgres", dbname="appdb",
                                     connect_timeout=1, autocommit=True) as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        count = conn.execute(QUERY).fetchone()[0]
                        assert count == expected, count
                        return time.monotonic() - started
            except psycopg.OperationalError:
                pass
            time.sleep(0.05)
    finally:
        as_service_user(platform, [f"{PG_BIN}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    count = rounds(__doc__)
    raws, orchestrateds = [], []
    with bench_session() as (platform, host), host.client() as api:
        assert follow(api, api.post("/api/clusters", json=SPEC)).status_code == 200
        verified = follow(api, api.post("/api/clusters/bench-src/backups", params={"namespace": "bench"}, json={}))
        assert verified.status_code == 200, verified.text
        for n in range(count):
            raws.append(raw(platform, 3, n))
            orchestrateds.append(orchestrated(api, 3))
            print(f"round {n + 1}: orchestrated {orchestrateds[-1]:.2f} s, raw {raws[-1]:.2f} s", flush=True)
        follow(api, api.delete("/api/clusters/bench-src", params={"namespace": "bench", "deleteBackups": "true"}))
    print_ratio("restore", orchestrateds, "raw barman-cloud restore + recovery", raws)


if __name__ == "__main__":
    main()
