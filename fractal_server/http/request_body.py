"""Reading a JSON request body: its content type, its size and its parsing.

Content type (the CSRF rule). A web page can make a browser send a POST
with its cookies and a `text/plain`, form-encoded or multipart body, or with
no content type at all (`fetch(..., {mode: "no-cors"})`), without asking the
server first (no CORS preflight). The login cookie is `SameSite=None`, as
the reference's, so such a request would carry it. Hence:

* a body with a content type other than `application/json` or
  `application/*+json` is refused, whoever sends it, with the reference's
  answer: FastAPI (0.1xx, pydantic v1) does not parse such a body and
  validates the raw bytes against the body model, which gives 422
  `{"detail": [{"loc": ["body"], "msg": "value is not a valid dict",
  "type": "type_error.dict"}]}` (`api-v2.md` 0.4: the "not an object" item;
  the reference document's `HTTPValidationError` shape);
* a body with no content type is read as JSON (as the reference does) when
  the caller shows a bearer token, which no other site can make a browser
  send; when the caller is known by the login cookie it is refused, with an
  item of the same shape that says why;
* for cookie callers, an empty body with a non-JSON content type is refused
  too (a form with no fields must not trigger an action that takes an
  optional body).

Size: Flask's `MAX_CONTENT_LENGTH` (`FRACTAL_MAX_REQUEST_BODY_BYTES`) makes
reading a larger body raise a 413, answered as `{"detail": ...}`.

Parsing: a body that is not JSON is the reference's 422 `json_invalid` item;
one the reference's parser gives up on (nested too deep for the parser,
integers with more digits than Python converts, bytes that are not UTF-8)
is its 400 `{"detail": "There was an error parsing the body"}`.
"""
import json
from typing import Any

from flask import request

from fractal_server.auth.current_user import authenticated_by_cookie
from fractal_server.http.errors import ApiError
from fractal_server.http.validation_errors import json_decode_error

EMPTY = object()
"""What `read_json_body` returns for an empty body."""

PARSE_ERROR = "There was an error parsing the body"
NOT_AN_OBJECT = {"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}
COOKIE_NEEDS_JSON = {
    "loc": ["body"],
    "msg": "a request authenticated by the login cookie must send its body as Content-Type: application/json",
    "type": "value_error.content_type",
}


def is_json_media_type(mimetype: str) -> bool:
    """`application/json` or `application/<anything>+json` (parameters already removed)."""
    kind, _, subtype = mimetype.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def read_json_body() -> Any:
    """The parsed JSON body, or `EMPTY`; `ApiError` (400/422) or 413 when it cannot be read."""
    raw = request.get_data(cache=True)
    mimetype = request.mimetype
    declared_json = is_json_media_type(mimetype)
    by_cookie = authenticated_by_cookie()
    if not raw.strip():
        if mimetype and not declared_json and by_cookie:
            raise ApiError(422, [NOT_AN_OBJECT])
        return EMPTY
    if mimetype and not declared_json:
        raise ApiError(422, [NOT_AN_OBJECT])
    if not mimetype and by_cookie:
        raise ApiError(422, [COOKIE_NEEDS_JSON])
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise ApiError(422, json_decode_error(error.pos, error.msg)) from None
    except (RecursionError, ValueError):  # includes UnicodeDecodeError
        raise ApiError(400, PARSE_ERROR) from None
