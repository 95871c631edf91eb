"""The fault-injection table: each fault test records what it injected and how the run ended, and the
session prints the table at its end (the closing note of issue 12 carries it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    runbook: str
    fault: str
    outcome: str
    seconds: float  # from the fault to the run's final answer


TABLE: list[Fault] = []


def record_fault(runbook: str, fault: str, outcome: str, seconds: float) -> None:
    TABLE.append(Fault(runbook, fault, outcome, round(seconds, 1)))


def markdown() -> str:
    rows = [f"| {f.runbook} | {f.fault} | {f.outcome} | {f.seconds:.1f} s |" for f in TABLE]
    return "\n".join(["| runbook | fault | outcome | time to outcome |", "|---|---|---|---|", *rows])
