"""Benchmark: an alert storm. 1000 common-schema alerts — 100 distinct alertIds, each delivered 10 times,
as action groups retry and several rules fire together — sent by 50 concurrent senders.

Prints the ack latency p50 / p99 of POST /api/alerts, the same percentiles of a baseline route that
does one durable-client lookup and no work (GET /api/operations/{unknown id}, a 404) sent the same way
in the same run, their ratio (both routes served by `pgha serve` in a process of its own, the senders
outside it), the number of orchestrations each storm started (must be 100: one per
alertId), and the ack of alerts sent one at a time: (c) each alone, sent once the previous one's run has
ended (an alert arriving on a quiet host), and (d) back to back, the runs of the alerts before it still going
on the same two cores. (b) is sent once (a)'s runs have ended: a baseline sent right after (a) met those runs
for a part of its time that changed from round to round (its p99 went from 175 to 600 ms), so the ratio
measured chance. (a) carries its own runs: each first delivery claims the alert, starts its run, and that
run's steps (a spec read, a report written twice) share the two cores with the acks after it. (e) repeats
the storm (new alertIds) once (a)'s runs have ended, with lookups sent beside it by 50 senders of their own
for as long as it lasts, so that both percentiles are taken under the same load.

    ./pgha bench alerts           (or: PYTHONPATH=. python bench/alerts.py --rounds 1)
"""

from __future__ import annotations

import copy
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from bench.harness import follow, rounds, served_session

DISTINCT, COPIES, SENDERS = 100, 10, 50
ALERT: dict[str, Any] = {
    "schemaId": "azureMonitorCommonAlertSchema",
    "data": {
        "essentials": {
            "alertId": "", "alertRule": "CNPGClusterHighReplicationLag", "severity": "Sev2", "signalType": "Metric",
            "monitorCondition": "Fired", "monitoringService": "Prometheus", "firedDateTime": "2026-11-26T03:00:00Z",
            "alertTargetIDs": ["/subscriptions/0000/resourcegroups/rg/providers/microsoft.monitor/accounts/amw"],
            "configurationItems": ["amw"],
        },
        "alertContext": {
            "expression": "max(cnpg_pg_replication_lag) > 30", "expressionValue": "42",
            "labels": {"alertname": "CNPGClusterHighReplicationLag", "cluster": "bench-storm", "namespace": "bench"},
        },
    },
}


def alert(n: int) -> dict[str, Any]:
    body = copy.deepcopy(ALERT)
    body["data"]["essentials"]["alertId"] = f"/subscriptions/0000/providers/Microsoft.AlertsManagement/alerts/{n}"
    return body


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def tail(latencies: list[float], answers: list[httpx.Response]) -> str:
    """Which requests make the storm's slowest 1%: first deliveries (a claim and a start each), copies (each
    answered from memory, or after its first delivery's outcome when it came while that one was under way), or
    refusals."""
    kinds = ["refused" if a.status_code != 202 else "copy" if a.json()["duplicate"] else "first" for a in answers]
    by_kind = {kind: [ms for ms, k in zip(latencies, kinds, strict=True) if k == kind] for kind in set(kinds)}
    slowest = sorted(zip(latencies, kinds, strict=True), reverse=True)[:max(1, len(latencies) // 100)]
    said = [f"{kind} p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms ({len(ms)})"
            for kind, ms in sorted(by_kind.items())]
    among = ", ".join(f"{sum(1 for _, k in slowest if k == kind)} {kind}" for kind in sorted(by_kind))
    return f"{'; '.join(said)}; the slowest {len(slowest)}: {among}"


def storm(api: httpx.Client, requests: list[tuple[str, str, Any]]) -> tuple[list[float], list[httpx.Response]]:
    def send(request: tuple[str, str, Any]) -> tuple[float, httpx.Response]:
        method, url, body = request
        started = time.perf_counter()
        response = api.request(method, url, json=body)
        return time.perf_counter() - started, response

    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        answers = list(pool.map(send, requests))
    return [a[0] * 1000 for a in answers], [a[1] for a in answers]


def alongside(api: httpx.Client, requests: list[tuple[str, str, Any]]
              ) -> tuple[list[float], list[httpx.Response], list[float], float]:
    """The storm, and lookups sent by senders of their own (as many) for as long as it lasts: the alerts'
    latencies and answers, the lookups' latencies, the storm's wall time in seconds."""
    over = threading.Event()
    lookups: list[float] = []

    def look(sender: int) -> None:
        while not over.is_set():
            started = time.perf_counter()
            api.get(f"/api/operations/bench-none-{sender}")
            lookups.append((time.perf_counter() - started) * 1000)

    with ThreadPoolExecutor(max_workers=SENDERS) as lookers:
        for sender in range(SENDERS):
            lookers.submit(look, sender)
        began = time.perf_counter()
        try:
            alert_ms, answers = storm(api, requests)
        finally:
            over.set()
    return alert_ms, answers, lookups, time.perf_counter() - began


def wait_finished(api: httpx.Client, ids: set[str], timeout: float = 300) -> int:
    """How many of these runs have ended, waiting for all of them up to `timeout`."""
    deadline = time.monotonic() + timeout
    finished = 0
    while time.monotonic() < deadline:
        finished = sum(1 for i in ids if api.get(f"/api/operations/{i}").status_code == 200)
        if finished == len(ids):
            break
        time.sleep(1)
    return finished


def main() -> None:
    count = rounds(__doc__)
    with served_session() as api:
        for n in range(count):
            base = n * DISTINCT
            burst = [("POST", "/api/alerts", alert(base + i % DISTINCT)) for i in range(DISTINCT * COPIES)]
            baseline = [("GET", f"/api/operations/bench-none-{i}", None) for i in range(DISTINCT * COPIES)]
            alert_ms, answers = storm(api, burst)
            codes = sorted({a.status_code for a in answers})
            started = {a.json()["id"] for a in answers if a.status_code == 202 and not a.json()["duplicate"]}
            ids = {a.json()["id"] for a in answers if a.status_code == 202}
            finished = wait_finished(api, ids)  # (b) on a host whose storm runs have ended, every round alike
            baseline_ms, _ = storm(api, baseline)
            # (e) the same storm again (new alertIds), on a host whose earlier runs have ended, with lookups
            # sent beside it for as long as it lasts: both percentiles under the same load
            e_alerts, mixed, e_lookups, e_wall = alongside(
                api, [("POST", "/api/alerts", alert(30_000 + base + i % DISTINCT)) for i in range(DISTINCT * COPIES)])
            e_started = {a.json()["id"] for a in mixed if a.status_code == 202 and not a.json()["duplicate"]}
            e_ids = {a.json()["id"] for a in mixed if a.status_code == 202}
            finished += wait_finished(api, e_ids)
            ids |= e_ids
            alone, back_to_back = [], []
            for i in range(DISTINCT):  # one at a time: the ack without a storm queued in front of it
                started_at = time.perf_counter()
                answer = api.post("/api/alerts", json=alert(10_000 + base + i))
                alone.append((time.perf_counter() - started_at) * 1000)
                follow(api, answer)  # its run ends before the next alert comes
            for i in range(DISTINCT):
                started_at = time.perf_counter()
                assert api.post("/api/alerts", json=alert(20_000 + base + i)).status_code == 202
                back_to_back.append((time.perf_counter() - started_at) * 1000)
            p50, p99 = statistics.median(alert_ms), percentile(alert_ms, 0.99)
            b50, b99 = statistics.median(baseline_ms), percentile(baseline_ms, 0.99)
            print(f"round {n + 1}: {len(burst)} alerts ({DISTINCT} distinct), HTTP codes {codes}")
            print(f"(a) POST /api/alerts ack latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({tail(alert_ms, answers)})")
            print(f"(b) baseline GET /api/operations/<unknown> (one durable lookup): "
                  f"p50 {b50:.1f} ms, p99 {b99:.1f} ms")
            print(f"(c) one alert at a time, each after the previous one's run ended ({DISTINCT} new alertIds): "
                  f"p50 {statistics.median(alone):.1f} ms, p99 {percentile(alone, 0.99):.1f} ms")
            print(f"(d) one alert at a time, back to back ({DISTINCT} new alertIds, earlier runs still going): "
                  f"p50 {statistics.median(back_to_back):.1f} ms, p99 {percentile(back_to_back, 0.99):.1f} ms")
            e99, l99 = percentile(e_alerts, 0.99), percentile(e_lookups, 0.99)
            print(f"(e) the storm again ({e_wall:.1f} s) with lookups beside it from {SENDERS} senders of their own "
                  f"({len(e_lookups)} sent): alerts p50 {statistics.median(e_alerts):.1f} ms, p99 {e99:.1f} ms; "
                  f"lookups p50 {statistics.median(e_lookups):.1f} ms, p99 {l99:.1f} ms; ratio p99 {e99 / l99:.2f}")
            print(f"orchestrations started: {len(started)} in (a), {len(e_started)} in (e) (distinct operation ids "
                  f"answered: {len(ids)}; finished: {finished})")
            print(f"ratio a/b: p50 {p50 / b50:.2f}, p99 {p99 / b99:.2f}")


if __name__ == "__main__":
    main()
