"""The OpenAPI document, built from the endpoint declarations of an app."""
import re
from http import HTTPStatus
from typing import Any

from flask import Flask
from pydantic import TypeAdapter

from fractal_server import __version__
from fractal_server.auth.current_user import COOKIE_NAME, Access
from fractal_server.http.routing import EndpointSpec
from fractal_server.schemas.validators import MAX_ID, MIN_ID

REF_TEMPLATE = "#/components/schemas/{model}"
ERROR_SCHEMA = {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}
ID_SCHEMA = {"type": "integer", "minimum": MIN_ID, "maximum": MAX_ID}


class _Components:
    """Collects the named schemas that the operations refer to."""

    def __init__(self):
        self.schemas: dict[str, Any] = {}

    def schema(self, annotation: Any, mode: str) -> dict:
        schema = TypeAdapter(annotation).json_schema(ref_template=REF_TEMPLATE, mode=mode)
        self.schemas.update(schema.pop("$defs", {}))
        return schema


def build_openapi(app: Flask) -> dict:
    components = _Components()
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        spec = getattr(app.view_functions.get(rule.endpoint), "endpoint_spec", None)
        if spec is None:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        paths.setdefault(path, {})[spec.method.lower()] = _operation(
            spec, sorted(rule.arguments), components
        )
    return {
        "openapi": "3.1.0",
        "info": {"title": "Fractal Server", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME},
            },
        },
    }


def _operation(spec: EndpointSpec, arguments: list[str], components: _Components) -> dict:
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": dict(ID_SCHEMA) if name.endswith("_id") else {"type": "string"},
        }
        for name in arguments
    ]
    if spec.query is not None:
        query_schema = components.schema(spec.query, "validation")
        required = set(query_schema.get("required", []))
        parameters += [
            {"name": name, "in": "query", "required": name in required, "schema": schema}
            for name, schema in query_schema.get("properties", {}).items()
        ]
    operation: dict[str, Any] = {"summary": spec.summary, "parameters": parameters}
    for model, content_type, required in (
        (spec.body, "application/json", spec.body_required),
        (spec.form, "application/x-www-form-urlencoded", True),
    ):
        if model is not None:
            operation["requestBody"] = {
                "required": required,
                "content": {content_type: {"schema": components.schema(model, "validation")}},
            }
    error = {"content": {"application/json": {"schema": ERROR_SCHEMA}}}
    success: dict[str, Any] = {"description": "Success"}
    if spec.response is not None:
        success["content"] = {
            "application/json": {"schema": components.schema(spec.response, "serialization")}
        }
    elif spec.status >= 400:  # an endpoint that always refuses
        success = {"description": spec.summary, **error}
    operation["responses"] = {str(spec.status): success}
    if spec.access is not Access.ANONYMOUS:
        operation["security"] = [{"bearer": []}, {"cookie": []}]
        operation["responses"]["401"] = {"description": "Not authenticated", **error}
    if spec.access in (Access.VERIFIED, Access.SUPERUSER):
        operation["responses"]["403"] = {"description": "Forbidden", **error}
    if _addresses_objects(spec, arguments):
        operation["responses"].setdefault("403", {"description": "Forbidden", **error})
        operation["responses"]["404"] = {"description": "Not found", **error}
    if spec.query or spec.body or spec.form or any(a.endswith("_id") for a in arguments):
        operation["responses"]["422"] = {"description": "Invalid request", **error}
    if spec.body or spec.form:
        operation["responses"]["413"] = {"description": "Request body too large", **error}
    if spec.body:
        operation["responses"]["400"] = {"description": "Body that cannot be parsed", **error}
    for status in spec.errors:
        operation["responses"][str(status)] = {"description": HTTPStatus(status).phrase, **error}
    return operation


def _addresses_objects(spec: EndpointSpec, arguments: list[str]) -> bool:
    """Whether the request names rows by id (path, query or body): they may be missing or not the user's."""
    names = list(arguments)
    for model in (spec.query, spec.body):
        if model is not None:
            names += list(model.model_fields)
    return any(name.endswith("_id") for name in names)
