"""A JSON body is JSON only when it says so: the CSRF rule, over every operation with a body.

Another site can make a logged-in browser send a POST with the login cookie
and a `text/plain`, form-encoded or multipart body, or with no content type
at all, without a CORS preflight. Every operation that takes a JSON body
refuses a body of another declared type (the reference's 422), and a body
without a content type when the caller is known by the cookie; bearer-token
callers may omit the content type, as with the reference. The routes come
from the application, so new operations are covered without touching this
file. The login forms take only their form types.
"""
import pytest

from fractal_server.auth.current_user import COOKIE_NAME

NOT_AN_OBJECT = {"detail": [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}]}
COOKIE_NEEDS_JSON = {
    "detail": [
        {
            "loc": ["body"],
            "msg": "a request authenticated by the login cookie must send its body as Content-Type: application/json",
            "type": "value_error.content_type",
        }
    ]
}
NOT_JSON_TYPES = [
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "text/json",
]
JSON_TYPES = ["application/json", "application/json; charset=utf-8", "application/merge-patch+json"]
BODY = b'{"name": "made by another site"}'


@pytest.fixture
def json_operations(declared_operations):
    """`(method, url)` of every operation with a JSON body."""
    operations = [(method, url) for method, url, spec in declared_operations if spec.body is not None]
    assert len(operations) >= 30
    return operations


@pytest.fixture
def token(superuser):
    """A superuser's token: every operation lets it through to the body."""
    return superuser[1]["Authorization"].removeprefix("Bearer ")


def answer(response):
    return response.status_code, response.json


def test_bodies_of_other_types_are_refused(client, token, json_operations):
    bearer = {"Authorization": f"Bearer {token}"}
    for method, url in json_operations:
        for content_type in NOT_JSON_TYPES:
            response = client.open(url, method=method, data=BODY, content_type=content_type, headers=bearer)
            assert answer(response) == (422, NOT_AN_OBJECT), (method, url, content_type)
    assert client.get("/api/v2/project/", headers=bearer).json == []


def test_json_types_are_read(client, token, json_operations):
    """Every JSON type gets the same answer, from a bearer or a cookie caller."""
    bearer = {"Authorization": f"Bearer {token}"}
    for method, url in json_operations:
        expected = answer(client.open(url, method=method, data=b"[]", content_type="application/json", headers=bearer))
        assert expected == (422, NOT_AN_OBJECT), (method, url)  # read as JSON, and not an object
        for content_type in JSON_TYPES[1:]:
            response = client.open(url, method=method, data=b"[]", content_type=content_type, headers=bearer)
            assert answer(response) == expected, (method, url, content_type)
    client.set_cookie(COOKIE_NAME, token)
    response = client.post("/api/v2/project/", data=b'{"name": "p"}', content_type="application/json")
    assert response.status_code == 201


def test_without_content_type_only_bearer_callers_are_read(client, token, json_operations):
    bearer = {"Authorization": f"Bearer {token}"}
    for method, url in json_operations:
        response = client.open(url, method=method, data=b"[]", headers=bearer)
        assert "Content-Type" not in response.request.headers
        assert answer(response) == (422, NOT_AN_OBJECT), (method, url)
    client.set_cookie(COOKIE_NAME, token)
    for method, url in json_operations:
        response = client.open(url, method=method, data=BODY)
        assert answer(response) == (422, COOKIE_NEEDS_JSON), (method, url)
    response = client.post("/api/v2/project/", data=BODY)
    assert answer(response) == (422, COOKIE_NEEDS_JSON)
    assert client.post("/api/v2/project/", data=BODY, headers=bearer).status_code == 201


def test_cookie_callers_cannot_send_an_empty_form(client, token, json_operations):
    """An empty body is "no body" only without a content type: a form with no fields is refused."""
    client.set_cookie(COOKIE_NAME, token)
    for method, url in json_operations:
        for content_type in NOT_JSON_TYPES:
            response = client.open(url, method=method, content_type=content_type)
            assert answer(response) == (422, NOT_AN_OBJECT), (method, url, content_type)
    # Without content type an empty body is no body, as for every client.
    response = client.post("/api/v2/project/")
    assert answer(response) == (422, {"detail": [{"loc": ["body"], "msg": "field required", "type": "value_error.missing"}]})


@pytest.mark.parametrize("path", ["/auth/token/login/", "/auth/login/"])
def test_login_forms_take_only_form_types(client, make_user, path):
    make_user("form@example.org", password="secret-password")
    credentials = {"username": "form@example.org", "password": "secret-password"}
    assert client.post(path, data=credentials).status_code in (200, 204)  # form-urlencoded
    assert client.post(path, data=credentials, content_type="multipart/form-data").status_code in (200, 204)
    missing = [
        {"loc": ["body", name], "msg": "field required", "type": "value_error.missing"} for name in ("username", "password")
    ]
    for content_type in ["application/json", "text/plain", None]:
        encoded = "username=form%40example.org&password=secret-password"
        response = client.post(path, data=encoded, content_type=content_type)
        assert answer(response) == (422, {"detail": missing}), content_type
    response = client.post(path, json=credentials)
    assert answer(response) == (422, {"detail": missing})
