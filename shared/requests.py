"""What an operator may ask of the backup runbooks: SQL checks, restores, verifications."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from shared.spec import Identifier, Model, Name, SpecError

LSN = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")]
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


class VerifyRequest(Model):
    backup: Literal["new", "latest", "random"] = "new"
    window_hours: int = Field(24 * 7, ge=1, le=24 * 365)
    restore_test: bool = False
    checks: list[SqlCheck] = Field(default_factory=list, max_length=50)


def parse_model(kind: type[Model], body: object) -> Any:
    """Validate a body, or raise SpecError naming the field (`checks.1.query`) as the client spelled it."""
    from pydantic import ValidationError

    if not isinstance(body, dict):
        raise SpecError("body", "must be a JSON object")
    try:
        return kind.model_validate(body)
    except ValidationError as err:
        first = err.errors()[0]
        loc = [str(part) for part in first["loc"]]
        field = ".".join(loc) or "body"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = f"is not a field of {kind.__name__}"
        if loc[:1] == ["checks"] and len(loc) >= 2 and isinstance(body.get("checks"), list):
            try:
                name = body["checks"][int(loc[1])].get("name")
            except (ValueError, IndexError, AttributeError):
                name = None
            if name:
                message = f"check {name!r}: {message}"
        raise SpecError(field, message) from None
