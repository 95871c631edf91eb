"""Benchmark: failover drills in both modes on one cluster; RTO per mode and writes lost.

Runs N drills of each mode (graceful: the primary's Patroni stopped, back after 3 s; crash: Patroni and
PostgreSQL killed, replaced after 25 s) and prints, per mode, the failover RTO median and max, the
switch-back RTO median, and the total of acknowledged-but-lost writes (the goal is 0).

    ./pgha bench drill            (or: PYTHONPATH=. python bench/drill.py --rounds 5)
"""

from __future__ import annotations

import statistics
import time

import httpx

from bench.harness import bench_session, rounds

SPEC = {"name": "bench-drill", "namespace": "bench", "instances": 3, "drills": {"enabled": True},
        "postgresql": {"parameters": {"shared_buffers": "64MB"}}}


def follow(api: httpx.Client, response: httpx.Response) -> httpx.Response:
    assert response.status_code == 202, response.text
    while (status := api.get(response.headers["Location"])).status_code == 202:
        time.sleep(0.5)
    return status


def main() -> None:
    count = rounds(__doc__)
    measured: dict[str, list[dict]] = {"graceful": [], "crash": []}
    with bench_session() as (_, host), host.client() as api:
        assert follow(api, api.post("/api/clusters", json=SPEC)).status_code == 200
        for mode in measured:
            for n in range(count):
                done = follow(api, api.post("/api/clusters/bench-drill/drills/failover",
                                            params={"namespace": "bench"}, json={"mode": mode}))
                assert done.status_code == 200, done.text
                result = done.json()["result"]
                measured[mode].append(result)
                print(f"{mode} {n + 1}: RTO {result['rtoSeconds']['failover']:.2f} s failover, "
                      f"{result['rtoSeconds']['switchback']:.2f} s switch-back; lost {result['rpoLostWrites']} of "
                      f"{result['probe']['acknowledged']}", flush=True)
        follow(api, api.delete("/api/clusters/bench-drill", params={"namespace": "bench", "deleteBackups": "true"}))
    lost = 0
    for mode, results in measured.items():
        failover = [r["rtoSeconds"]["failover"] for r in results]
        switchback = [r["rtoSeconds"]["switchback"] for r in results]
        lost += sum(r["rpoLostWrites"] for r in results)
        print(f"{mode}: failover RTO median {statistics.median(failover):.2f} s, max {max(failover):.2f} s; "
              f"switch-back RTO median {statistics.median(switchback):.2f} s")
    print(f"acknowledged writes lost in {2 * count} drills: {lost}")


if __name__ == "__main__":
    main()
