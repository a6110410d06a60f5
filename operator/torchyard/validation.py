"""Turn pydantic validation errors into messages that name the field, as kubectl does."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError


class InvalidSpec(ValueError):
    """The spec breaks a rule; the message names the field and what to change."""


def field_path(loc: tuple[int | str, ...], root: str = "spec") -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def describe(error: ValidationError, root: str = "spec") -> str:
    """One line per problem: `spec.prune.sparsity: Input should be less than 1`."""
    lines = []
    for problem in error.errors(include_url=False):
        message = problem["msg"].removeprefix("Value error, ")
        # Model-level validators prefix their message with the field they are about.
        head, sep, rest = message.partition(": ")
        loc = tuple(problem["loc"])
        if sep and head.replace(".", "").isalnum() and " " not in head:
            loc = (*loc, *head.split("."))
            message = rest
        lines.append(f"{field_path(loc, root)}: {message}")
    return "; ".join(lines)


ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_spec(model: type[ModelT], spec: dict[str, Any]) -> ModelT:
    """Parse and default a spec; raise InvalidSpec with a field-naming message."""
    try:
        return model.model_validate(spec)
    except ValidationError as error:
        raise InvalidSpec(describe(error)) from None


def stored_form(model: type[BaseModel], key: str, value: Any) -> Any:
    """`value` of field `key` as `model` (a status schema) stores it, or None where it
    would not fit. A pod writes its termination message: a value of the wrong type (even
    "1.5" for a number), too long or not finite would make the API server refuse the
    whole status write."""
    if value is None:
        return None
    try:
        stored = model.model_validate({key: value}, strict=True)
        dumped = stored.model_dump(mode="json", by_alias=True, exclude_none=True).get(key)
        json.dumps(dumped, allow_nan=False)
    except (ValueError, TypeError):
        return None
    return dumped
