"""Benchmark: day-2 changes on one cluster; the client-seen outage (RTO) of each kind and the writes lost.

Runs N rolling updates (shared_buffers changed each time, so every instance restarts: the standbys from the
highest serial, then the primary in place, CNPG's default primaryUpdateMethod) and N planned switchovers
(to the most advanced in-sync standby), each with pgha's write probe beside it, and prints per kind the RTO
median and max (for a rolling update: the primary's restart, and the worst standby restart, which clients of
the rw endpoint should not see), the run's median duration, and the total of acknowledged-but-lost writes
(the goal is 0).

    ./pgha bench update            (or: PYTHONPATH=. python bench/update.py --rounds 5)
"""

from __future__ import annotations

import statistics

import httpx

from bench.by_hand import until
from bench.harness import bench_session, follow, rounds

SPEC = {"name": "bench-upd", "namespace": "bench", "instances": 3,
        "postgresql": {"parameters": {"shared_buffers": "64MB"}}}
CLUSTER = "/api/clusters/bench-upd"
PARAMS = {"namespace": "bench"}


def settled(api: httpx.Client) -> None:
    """Healthy again before the next change, as an operator would wait (a pre-flight refuses otherwise): the old
    primary may still be rejoining the quorum when a switchover's run ends."""
    def look() -> tuple[bool | None, str]:
        status = api.get(CLUSTER, params=PARAMS).json()
        return (True if status["healthy"] else None), status["phase"]
    until("the cluster healthy", look, 120)


def main() -> None:
    count = rounds(__doc__)
    rolling: list[dict] = []
    switchovers: list[dict] = []
    with bench_session() as (_, host), host.client() as api:
        assert follow(api, api.post("/api/clusters", json=SPEC)).status_code == 200
        for n in range(count):
            settled(api)
            size = f"{64 + 16 * (n + 1)}MB"
            done = follow(api, api.patch(CLUSTER, params=PARAMS,
                                         json={"postgresql": {"parameters": {"shared_buffers": size}}}))
            assert done.status_code == 200, done.text
            result = {**done.json()["result"], "seconds": done.json()["durationSeconds"]}
            rolling.append(result)
            restarts = ", ".join(f"{r['instance']} {r['role']} {r['rtoSeconds']:.2f} s" for r in result["restarts"])
            print(f"rolling update {n + 1} (shared_buffers {size}): {restarts}; lost {result['rpoLostWrites']} of "
                  f"{result['probe']['acknowledged']}; run {result['seconds']:.1f} s", flush=True)
        for n in range(count):
            settled(api)
            done = follow(api, api.post(f"{CLUSTER}/switchover", params=PARAMS, json={}))
            assert done.status_code == 200, done.text
            result = {**done.json()["result"], "seconds": done.json()["durationSeconds"]}
            switchovers.append(result)
            print(f"switchover {n + 1} ({result['from']} -> {result['to']}): RTO {result['rtoSeconds']:.2f} s; lost "
                  f"{result['rpoLostWrites']} of {result['probe']['acknowledged']}; run {result['seconds']:.1f} s",
                  flush=True)
        follow(api, api.delete(CLUSTER, params={**PARAMS, "deleteBackups": "true"}))
    primary = [next(r["rtoSeconds"] for r in u["restarts"] if r["role"] == "primary") for u in rolling]
    standby = [max((r["rtoSeconds"] for r in u["restarts"] if r["role"] == "standby"), default=0.0) for u in rolling]
    switched = [s["rtoSeconds"] for s in switchovers]
    print(f"rolling update, the primary's restart: RTO median {statistics.median(primary):.2f} s, "
          f"max {max(primary):.2f} s; standby restarts: max {max(standby):.2f} s; run median "
          f"{statistics.median(u['seconds'] for u in rolling):.1f} s")
    print(f"planned switchover: RTO median {statistics.median(switched):.2f} s, max {max(switched):.2f} s; run "
          f"median {statistics.median(s['seconds'] for s in switchovers):.1f} s")
    lost = sum(r["rpoLostWrites"] for r in rolling + switchovers)
    print(f"acknowledged writes lost in {len(rolling)} rolling updates and {len(switchovers)} switchovers: {lost}")


if __name__ == "__main__":
    main()
