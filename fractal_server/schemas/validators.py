"""Field rules shared by the request models (`api-v2.md` section 0.5).

Each rule is a plain function raising `ValueError` with the contract's
message, plus an `Annotated` type that applies it with the field's name.
"""
import os
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, WithJsonSchema

FORBIDDEN_COMMAND_CHARS = "`#$&*()\\|[]{};<>?!"
MIN_ID, MAX_ID = -(2**31), 2**31 - 1
"""The range of ids a query can name (ids are PostgreSQL `integer` columns)."""


MAX_NAME_LENGTH = 512
"""Characters of a name: of a project, dataset, workflow, task, task-group label, user group, user."""
MAX_TEXT_LENGTH = 100_000
"""Characters of any other string of a request (paths, commands, versions, documentation...)."""
BOUNDED_STRINGS = ConfigDict(str_max_length=MAX_TEXT_LENGTH)
"""The configuration every request model has (a longer string is a 422)."""


class ApiModel(BaseModel):
    """Request models: unknown keys ignored, numbers accepted where strings are."""

    model_config = ConfigDict(coerce_numbers_to_str=True, **BOUNDED_STRINGS)


MAX_QUERY_LENGTH = 4096
"""Characters of a query-string parameter: the whole URL must stay within what servers read."""


class QueryModel(ApiModel):
    """Query-string models."""

    model_config = ConfigDict(str_max_length=MAX_QUERY_LENGTH)


class StrictApiModel(ApiModel):
    """Request models whose unknown keys are a 422 error."""

    model_config = ConfigDict(extra="forbid")


def nonempty(value: str, name: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise ValueError(f"String attribute '{name}' cannot be empty")
    return stripped


def absolute_path(value: str, name: str) -> str:
    value = nonempty(value, name)
    if not value.startswith("/"):
        raise ValueError(f"String attribute '{name}' must be an absolute path (given '{value}').")
    return value


def unique_items(values: list, name: str) -> list:
    if len(values) != len({repr(v) for v in values}):
        raise ValueError(f"`{name}` list has repetitions")
    return values


def clean_keys(mapping: dict) -> dict:
    """Strip every key; empty or colliding keys are errors."""
    cleaned = {}
    for key, value in mapping.items():
        new_key = key.strip()
        if not new_key:
            raise ValueError("Dictionary keys cannot be empty")
        if new_key in cleaned:
            raise ValueError("Dictionary contains multiple identical keys")
        cleaned[new_key] = value
    return cleaned


def normalize_url(value: str) -> str:
    """Local paths are normalised like `os.path.normpath`; S3 is not supported."""
    if value.startswith("/"):
        normalized = os.path.normpath(value)
        return "/" + normalized.lstrip("/") if normalized.startswith("//") else normalized
    if value.startswith("s3"):
        raise ValueError("S3 handling not implemented yet")
    raise ValueError("URLs must begin with '/' or 's3'.")


def no_forbidden_chars(value: str, attribute: str) -> str:
    found = sorted({char for char in value if char in FORBIDDEN_COMMAND_CHARS})
    if found:
        raise ValueError(
            f"{attribute} must not contain any of this characters: "
            f"'{FORBIDDEN_COMMAND_CHARS}'\nProvided {attribute.lower()}: '{value}'."
        )
    return value


def _reject_none(value: Any, info: ValidationInfo) -> Any:
    if value is None:
        raise ValueError(f"String attribute '{info.field_name}' cannot be None")
    return value


def _nonempty_field(value: Optional[str], info: ValidationInfo) -> Optional[str]:
    return None if value is None else nonempty(value, info.field_name)


def _absolute_path_field(value: Optional[str], info: ValidationInfo) -> Optional[str]:
    return None if value is None else absolute_path(value, info.field_name)


def _unique_field(values: Optional[list], info: ValidationInfo) -> Optional[list]:
    return None if values is None else unique_items(values, info.field_name)


def _clean_keys_field(value: Optional[dict]) -> Optional[dict]:
    return None if value is None else clean_keys(value)


NonEmptyStr = Annotated[str, BeforeValidator(_reject_none), AfterValidator(_nonempty_field)]
"""A stripped, non-empty string; explicit null is an error."""

OptionalNonEmptyStr = Annotated[Optional[str], AfterValidator(_nonempty_field)]
"""A stripped, non-empty string, or null."""

NameStr = Annotated[str, Field(max_length=MAX_NAME_LENGTH)]
NonEmptyNameStr = Annotated[NameStr, BeforeValidator(_reject_none), AfterValidator(_nonempty_field)]
OptionalNonEmptyNameStr = Annotated[Optional[NameStr], AfterValidator(_nonempty_field)]

OptionalAbsolutePath = Annotated[Optional[str], AfterValidator(_absolute_path_field)]

CleanKeysDict = Annotated[dict[str, Any], AfterValidator(_clean_keys_field)]

UrlStr = Annotated[str, AfterValidator(normalize_url), WithJsonSchema({"type": "string", "pattern": "^/"})]
"""Documented as what it accepts: local paths (S3 URLs are a 422, not implemented)."""

RowId = Annotated[int, Field(ge=MIN_ID, le=MAX_ID)]
"""The id of a database row: values out of range are a 422 error, not a database error."""


def unique_list_validator():
    """For `Annotated[list[...], unique_list_validator()]`."""
    return AfterValidator(_unique_field)
