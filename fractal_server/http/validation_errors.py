"""422 bodies in the format that Fractal clients know.

Request models are pydantic v2 models, but clients of fractal-server 2.9
expect the pydantic v1 wording of validation errors (`field required`,
`value_error.missing`, `__root__` for model-level checks). This module
translates one into the other; nothing else in the code base deals with
error formats.
"""
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

ROOT_ERROR_TYPE = "root_error"

_FIXED_MESSAGES = {
    "missing": ("field required", "value_error.missing"),
    "extra_forbidden": ("extra fields not permitted", "value_error.extra"),
    "string_type": ("str type expected", "type_error.str"),
    "int_type": ("value is not a valid integer", "type_error.integer"),
    "int_parsing": ("value is not a valid integer", "type_error.integer"),
    "int_from_float": ("value is not a valid integer", "type_error.integer"),
    "float_type": ("value is not a valid float", "type_error.float"),
    "float_parsing": ("value is not a valid float", "type_error.float"),
    "bool_type": ("value could not be parsed to a boolean", "type_error.bool"),
    "bool_parsing": ("value could not be parsed to a boolean", "type_error.bool"),
    "dict_type": ("value is not a valid dict", "type_error.dict"),
    "model_type": ("value is not a valid dict", "type_error.dict"),
    "model_attributes_type": ("value is not a valid dict", "type_error.dict"),
    "list_type": ("value is not a valid list", "type_error.list"),
    "datetime_type": ("invalid datetime format", "value_error.datetime"),
    "datetime_parsing": ("invalid datetime format", "value_error.datetime"),
    "datetime_from_date_parsing": ("invalid datetime format", "value_error.datetime"),
    "url_parsing": ("invalid or missing URL scheme", "value_error.url.scheme"),
    "url_scheme": ("invalid or missing URL scheme", "value_error.url.scheme"),
    # Strings with unpaired surrogates (pydantic finds them in fields with a length limit).
    "string_unicode": ("string is not valid unicode", "value_error"),
}


def root_error(message: str) -> PydanticCustomError:
    """An error for a model-level check, reported at `[..., "__root__"]`."""
    return PydanticCustomError(ROOT_ERROR_TYPE, message)


def to_v1_errors(error: ValidationError, source: str) -> list[dict]:
    """The list under `detail` for a 422 answer; `source` is body/query/path."""
    return [_to_v1(item, source) for item in error.errors(include_url=False)]


def _to_v1(item: dict, source: str) -> dict:
    kind = item["type"]
    loc = [source, *item["loc"]]
    ctx = None
    if kind == ROOT_ERROR_TYPE:
        loc.append("__root__")
        msg, v1_type = item["msg"], "value_error"
    elif kind.endswith("_type") and item.get("input", ...) is None:
        msg, v1_type = "none is not an allowed value", "type_error.none.not_allowed"
    elif kind in _FIXED_MESSAGES:
        msg, v1_type = _FIXED_MESSAGES[kind]
    elif kind == "value_error":
        msg = item["msg"].removeprefix("Value error, ")
        v1_type = "value_error.email" if "email address" in msg else "value_error"
        if v1_type == "value_error.email":
            msg = "value is not a valid email address"
    elif kind == "assertion_error":
        msg, v1_type = item["msg"].removeprefix("Assertion failed, "), "assertion_error"
    elif kind == "too_short":
        limit = item["ctx"]["min_length"]
        msg, v1_type = f"ensure this value has at least {limit} items", "value_error.list.min_items"
        ctx = {"limit_value": limit}
    elif kind in ("literal_error", "enum"):
        msg, v1_type, ctx = _enumeration(item)
    elif kind in ("greater_than_equal", "greater_than"):
        bound = item["ctx"].get("ge", item["ctx"].get("gt"))
        word = "greater than or equal to" if kind == "greater_than_equal" else "greater than"
        msg = f"ensure this value is {word} {bound}"
        v1_type = "value_error.number.not_ge" if kind == "greater_than_equal" else "value_error.number.not_gt"
        ctx = {"limit_value": bound}
    elif kind == "string_too_long":
        limit = item["ctx"]["max_length"]
        msg, v1_type = f"ensure this value has at most {limit} characters", "value_error.any_str.max_length"
        ctx = {"limit_value": limit}
    elif kind == "less_than_equal":
        bound = item["ctx"]["le"]
        msg, v1_type = f"ensure this value is less than or equal to {bound}", "value_error.number.not_le"
        ctx = {"limit_value": bound}
    else:
        msg, v1_type = item["msg"], kind
    result: dict[str, Any] = {"loc": loc, "msg": msg, "type": v1_type}
    if ctx is not None:
        result["ctx"] = ctx
    return result


def _enumeration(item: dict) -> tuple[str, str, dict]:
    expected = item["ctx"]["expected"]
    permitted = [part.strip().strip("'") for part in expected.replace(" or ", ", ").split(",")]
    permitted = [value for value in permitted if value]
    listed = ", ".join(f"'{value}'" for value in permitted)
    if item["type"] == "enum":
        return (
            f"value is not a valid enumeration member; permitted: {listed}",
            "type_error.enum",
            {"enum_values": permitted},
        )
    return (
        f"unexpected value; permitted: {listed}",
        "value_error.const",
        {"given": item.get("input"), "permitted": permitted},
    )


def json_decode_error(offset: int, reason: str) -> list[dict]:
    """The single-item detail for a body that is not valid JSON."""
    return [
        {
            "type": "json_invalid",
            "loc": ["body", offset],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": reason},
        }
    ]
