"""What an operator may ask of the backup runbooks: SQL checks, restores, verifications."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from shared.model import Model
from shared.spec import Identifier, Name

LSN = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")]
WINDOW_HOURS = 24 * 7  # a random backup is chosen among those of the last week unless asked otherwise
READ_ONLY_START = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


class SqlCheck(Model):
    """One read-only query with the exact value expected, or a timestamp no older than maxAgeSeconds."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    database: Identifier | None = None
    query: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    expected: Any = None
    max_age_seconds: int | None = Field(None, ge=1, le=10 * 365 * 86400)

    @field_validator("query")
    @classmethod
    def _single_read_only_statement(cls, query: str) -> str:
        body = query.strip().rstrip(";").strip()
        if not READ_ONLY_START.match(body):
            raise ValueError("must be a single SELECT or WITH statement")
        if ";" in body:
            raise ValueError("must be a single statement (no ';' inside)")
        return body

    @model_validator(mode="after")
    def _one_expectation(self) -> SqlCheck:
        if (self.expected is None) == (self.max_age_seconds is None):
            raise ValueError("give exactly one of expected or maxAgeSeconds")
        return self


class RestoreRequest(Model):
    name: Name | None = None
    instances: int = Field(1, ge=1, le=9)
    target_time: datetime | None = None
    target_lsn: LSN | None = None
    keep: bool = False
    checks: list[SqlCheck] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _one_target(self) -> RestoreRequest:
        if self.target_time is not None and self.target_lsn is not None:
            raise ValueError("give at most one of targetTime and targetLSN")
        if self.target_time is not None and self.target_time.tzinfo is None:
            raise ValueError("targetTime needs a time zone (e.g. 2026-01-01T10:00:00Z)")
        return self


class DrillRequest(Model):
    # `graceful` like a pod deleted with a grace period, `crash` like a lost node; a dry run only plans
    # (no docstring: it would become the schema's description in openapi.json)
    mode: Literal["graceful", "crash"] = "graceful"
    dry_run: bool = False


class SwitchoverRequest(Model):
    target: str | None = Field(None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?-[0-9]+$", max_length=63,
                               description="the standby to promote (<cluster>-<serial>); unset, the most "
                                           "advanced in-sync standby")


class RotateRequest(Model):
    """Nothing to choose: the new password is made inside the run, and every cluster sharing the secret is
    covered (a cluster left out would keep a password its applications can no longer read)."""


class VerifyRequest(Model):
    backup: Literal["new", "latest", "random"] = "new"
    window_hours: int = Field(WINDOW_HOURS, ge=1, le=24 * 365)
    restore_test: bool = False
    checks: list[SqlCheck] = Field(default_factory=list, max_length=50)
