"""The base of pgha's typed data: CNPG's camelCase on the wire, snake_case in Python, and one way to
turn a refused body into the field an operator must fix."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

M = TypeVar("M", bound="Model")


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def dump(self) -> dict[str, Any]:
        """Plain JSON, as the durable runtime and the API carry it."""
        return self.model_dump(by_alias=True, mode="json")


class SpecError(ValueError):
    """A request was refused; `field` names the offending field as the client spelled it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_model(kind: type[M], body: object) -> M:
    """Validate a body, or raise SpecError naming the field (`checks.1.query`) as the client spelled it."""
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
        raise SpecError(field, _named_check(body, loc, message)) from None


def _named_check(body: dict[str, Any], loc: list[str], message: str) -> str:
    """A bad SQL check is named by its own `name`, which the operator knows better than its index."""
    if loc[:1] != ["checks"] or len(loc) < 2 or not isinstance(body.get("checks"), list):
        return message
    try:
        name = body["checks"][int(loc[1])].get("name")
    except (ValueError, IndexError, AttributeError):
        name = None
    return f"check {name!r}: {message}" if name else message


def wire(value: Any) -> Any:
    """A value as the durable runtime carries it: models (in lists and dicts too) as plain JSON."""
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, mode="json")
    if isinstance(value, dict):
        return {key: wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [wire(item) for item in value]
    return value
