"""Declaring endpoints: access level, typed inputs and output in one place.

    @endpoint(bp, "GET", "/project/<project_id>/", access=Access.ACTIVE,
              query=ProjectQuery, response=ProjectRead)
    def read_project(user, project_id: int, query: ProjectQuery): ...

Every request goes through the same steps, in the order of the contract:
authentication (401/403), then validation of path, query and body (422),
then the view. The declaration is also what the OpenAPI document is built
from, so the document and the behaviour cannot drift apart.
"""
import json
import math
from dataclasses import dataclass
from functools import wraps
from typing import Any, Optional

from flask import Blueprint, Response, request
from pydantic import BaseModel, TypeAdapter, ValidationError

from fractal_server.auth.current_user import Access, authenticate
from fractal_server.http.errors import ApiError
from fractal_server.http.request_body import EMPTY, read_json_body
from fractal_server.http.validation_errors import to_v1_errors
from fractal_server.schemas.validators import RowId

NO_BODY = object()
"""Marker for a view that answers with an empty body."""

_ROW_ID = TypeAdapter(RowId)
MAX_JSON_DEPTH = 100
"""How many objects and arrays deep a request may be nested (the body itself is one)."""


def empty_response(status: int) -> Response:
    """An answer with no body and no content type."""
    response = Response(status=status)
    del response.headers["Content-Type"]
    return response


@dataclass(frozen=True)
class EndpointSpec:
    method: str
    rule: str
    access: Access
    query: Optional[type[BaseModel]]
    body: Optional[type[BaseModel]]
    body_required: bool
    form: Optional[type[BaseModel]]
    response: Any
    status: int
    summary: str
    errors: tuple[int, ...] = ()
    """Statuses of application errors the view may answer besides the usual ones (for the document)."""


def endpoint(
    blueprint: Blueprint,
    method: str,
    rule: str,
    *,
    access: Access,
    query: Optional[type[BaseModel]] = None,
    body: Optional[type[BaseModel]] = None,
    body_required: bool = True,
    form: Optional[type[BaseModel]] = None,
    response: Any = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
):
    """Register a view on `blueprint`; see the module docstring."""
    response_adapter = TypeAdapter(response) if response is not None else None

    def decorator(view):
        spec = EndpointSpec(
            method=method,
            rule=rule,
            access=access,
            query=query,
            body=body,
            body_required=body_required,
            form=form,
            response=response,
            status=status,
            summary=(view.__doc__ or view.__name__).strip().splitlines()[0],
            errors=errors,
        )

        @wraps(view)
        def handle(**path_values):
            kwargs: dict[str, Any] = {}
            user = authenticate(access)
            if access is not Access.ANONYMOUS:
                kwargs["user"] = user
            kwargs.update(_parse_path(path_values))
            if query is not None:
                kwargs["query"] = _validate(query, request.args.to_dict(), "query")
            if form is not None:
                kwargs["form"] = _validate(form, request.form.to_dict(), "body")
            if body is not None:
                kwargs["body"] = _parse_body(body, body_required)
            result = view(**kwargs)
            return _make_response(result, status, response_adapter)

        handle.endpoint_spec = spec
        blueprint.add_url_rule(
            rule, view.__name__, handle, methods=[method], provide_automatic_options=False
        )
        return handle

    return decorator


def _parse_path(values: dict[str, str]) -> dict[str, Any]:
    """Path parameters named `*_id` are row ids: integers within the database's range."""
    parsed: dict[str, Any] = {}
    for name, raw in values.items():
        if name.endswith("_id"):
            try:
                parsed[name] = _ROW_ID.validate_python(int(raw))
            except ValidationError as error:
                errors = to_v1_errors(error, "path")
                raise ApiError(422, [{**item, "loc": ["path", name]} for item in errors]) from None
            except ValueError:
                raise ApiError(
                    422,
                    [
                        {
                            "loc": ["path", name],
                            "msg": "value is not a valid integer",
                            "type": "type_error.integer",
                        }
                    ],
                ) from None
        else:
            parsed[name] = raw
    return parsed


def _parse_body(model: type[BaseModel], required: bool):
    data = read_json_body()
    if data is EMPTY:
        if required:
            raise ApiError(
                422, [{"loc": ["body"], "msg": "field required", "type": "value_error.missing"}]
            )
        return None
    if data is None and not required:
        return None
    return _validate(model, data, "body")


def _validate(model: type[BaseModel], data: Any, source: str):
    try:
        validated = model.model_validate(data)
    except ValidationError as error:
        raise ApiError(422, to_v1_errors(error, source)) from None
    errors = list(_unstorable(validated.model_dump(), [source]))
    if errors:
        raise ApiError(422, errors)
    return validated


def _unstorable(value: Any, loc: list):
    """422 errors for values PostgreSQL cannot store or compare (instead of a 500 later).

    Text cannot contain NUL characters nor unpaired surrogates (not UTF-8),
    and JSON has no infinite or NaN numbers. Documents nested deeper than
    `MAX_JSON_DEPTH` could be stored but not answered (pydantic serialises
    at most 255 levels, and answers wrap documents in a few more).
    """
    if isinstance(value, (dict, list, tuple)) and len(loc) > MAX_JSON_DEPTH:
        yield {"loc": loc[:2], "msg": f"ensure this value is nested at most {MAX_JSON_DEPTH} levels deep",
               "type": "value_error"}
    elif isinstance(value, str):
        if "\x00" in value:
            yield {"loc": loc, "msg": "string cannot contain NUL (0x00) characters", "type": "value_error"}
        elif not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                yield {"loc": loc, "msg": "string is not valid unicode", "type": "value_error"}
    elif isinstance(value, float) and not math.isfinite(value):
        yield {"loc": loc, "msg": "ensure this value is a finite number", "type": "value_error"}
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unstorable(key, [*loc, key])
            yield from _unstorable(item, [*loc, key])
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _unstorable(item, [*loc, index])


def _make_response(result: Any, status: int, adapter: Optional[TypeAdapter]) -> Response:
    if isinstance(result, Response):
        return result
    if result is NO_BODY:
        return empty_response(status)
    if adapter is not None:
        payload = adapter.dump_json(adapter.validate_python(result, from_attributes=True))
    elif isinstance(result, BaseModel):
        payload = result.model_dump_json()
    else:
        payload = json.dumps(result)
    return Response(payload, status=status, mimetype="application/json")
