"""What one runbook step did, in words an operator reads in the report."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shared.model import Model

OutcomeKind = Literal["done", "unchanged", "skipped"]


class Outcome(Model):
    outcome: str  # OutcomeKind from a platform; a report also records failed, timed out, interrupted, ...
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


def done(detail: str, **data: Any) -> Outcome:
    return Outcome(outcome="done", detail=detail, data=data)


def unchanged(detail: str, **data: Any) -> Outcome:
    return Outcome(outcome="unchanged", detail=detail, data=data)


def skipped(detail: str, **data: Any) -> Outcome:
    return Outcome(outcome="skipped", detail=detail, data=data)
